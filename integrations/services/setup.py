"""Customers, integrations and API keys: what staff set up. Every writer (the commands, the admin's
forms) goes through these, so each setting is checked in one place: the e-mail addresses
(`validate_emails`), the webhook URL (`validate_webhook_url`) and secret, the target, field map and
adapter against the registries, the limits and the unique slugs."""

import base64
import binascii
import json

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from ..exceptions import Conflict, IntegrationsError, InvalidInput, NotFound
from ..models import ApiKey, Customer, Integration, Mode
from ..targets import get_adapter, get_target


def customer_create(*, slug: str, name: str, emails: list[str] | None = None, is_active: bool = True) -> Customer:
    customer = Customer(slug=slug, name=name, contacts=list(emails or []), is_active=is_active)
    customer_check(customer)
    customer.save()
    return customer


def customer_update(
    *,
    customer: Customer,
    slug: str | None = None,
    name: str | None = None,
    emails: list[str] | None = None,
    is_active: bool | None = None,
) -> Customer:
    """Change a customer's settings (None: keep it), through customer_create's checks."""
    changes = {
        field: value
        for field, value in (
            ("slug", slug),
            ("name", name),
            ("is_active", is_active),
            ("contacts", None if emails is None else list(emails)),
        )
        if value is not None
    }
    _change(customer, changes, customer_check)
    return customer


def customer_check(customer: Customer) -> None:
    """Every check of a customer's settings, new or changed: InvalidInput or Conflict, with `details`
    naming the setting (the admin form shows the message beside that field)."""
    validate_emails(customer.contacts or [])
    if Customer.objects.filter(slug=customer.slug).exclude(pk=customer.pk).exists():
        raise Conflict(f"a customer with slug {customer.slug!r} already exists", details={"slug": "taken"})
    _full_clean(customer)


def customer_get(slug: str) -> Customer:
    try:
        return Customer.objects.get(slug=slug)
    except Customer.DoesNotExist:
        raise NotFound(f"unknown customer {slug!r}") from None


def integration_get(customer_slug: str, slug: str) -> Integration:
    try:
        return Integration.objects.select_related("customer").get(customer__slug=customer_slug, slug=slug)
    except Integration.DoesNotExist:
        raise NotFound(f"unknown integration {customer_slug}/{slug}") from None


def validate_integration_settings(
    *, target: str, field_map, adapter: str = "", webhook_url: str = "", webhook_secret: str = ""
) -> dict:
    """Check settings against the registries; raise InvalidInput naming the bad setting."""
    try:
        target_obj = get_target(target)
    except LookupError as exc:
        raise InvalidInput(str(exc), details={"target": str(exc)}) from None
    if isinstance(field_map, str):
        try:
            field_map = json.loads(field_map or "{}")
        except ValueError as exc:
            raise InvalidInput(f"field map is not valid JSON: {exc}", details={"field_map": str(exc)}) from None
    if not isinstance(field_map, dict):
        raise InvalidInput("field map must be a JSON object", details={"field_map": "not an object"})
    known = set(target_obj.struct_fields)
    for source, dest in field_map.items():
        if dest is not None and dest not in known:
            msg = f"field map sends {source!r} to {dest!r}, which is not a field of {target}; fields: {', '.join(sorted(known))}"
            raise InvalidInput(msg, details={"field_map": msg})
    if adapter:
        try:
            get_adapter(adapter)
        except LookupError as exc:
            raise InvalidInput(str(exc), details={"adapter": str(exc)}) from None
    if webhook_url:
        validate_webhook_url(webhook_url)
    if webhook_secret:
        validate_webhook_secret(webhook_secret)
    return field_map


def validate_webhook_url(url: str) -> None:
    """The one check of a webhook URL for every writer (admin form, command, service): an http(s)
    URL whose host resolves to public addresses only (SPEC section 6, the rule deliveries follow)."""
    from .. import webhooks

    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise InvalidInput(f"webhook URL {url!r} is not an http(s) URL", details={"webhook_url": "invalid"}) from None
    try:
        webhooks.check_url(url)
    except webhooks.Refused as exc:
        raise InvalidInput(f"webhook URL {url!r}: {exc}", details={"webhook_url": str(exc)}) from None


# Standard Webhooks: `whsec_` and the base64 of the signing key, 24 to 64 random bytes
WEBHOOK_SECRET_BYTES = (24, 64)


def validate_webhook_secret(secret: str) -> None:
    """A secret the signer can use: `whsec_` + base64 of 24 to 64 bytes (else every delivery would
    fail to sign, or be signed with a guessable key)."""
    low, high = WEBHOOK_SECRET_BYTES
    message = f"webhook secret must start with whsec_ followed by the base64 of {low} to {high} random bytes"
    if not secret.startswith("whsec_"):
        raise InvalidInput(message, details={"webhook_secret": "invalid"})
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(message, details={"webhook_secret": "not base64"}) from None
    if not low <= len(key) <= high:
        raise InvalidInput(f"{message}, not {len(key)}", details={"webhook_secret": "wrong length"})


def integration_create(
    *,
    customer: Customer,
    slug: str,
    target: str,
    mode: str = Mode.FULL,
    max_error_rate: float = 0.0,
    max_deletes_percent: float = 20.0,
    webhook_url: str = "",
    webhook_secret: str = "",
    field_map=None,
    adapter: str = "",
    contacts: list[str] | None = None,
    is_active: bool = True,
) -> Integration:
    integration = Integration(
        customer=customer,
        slug=slug,
        target=target,
        default_mode=mode,
        max_error_rate=max_error_rate,
        max_deletes_percent=max_deletes_percent,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        field_map=field_map or {},
        adapter=adapter,
        contacts=list(contacts or []),
        is_active=is_active,
    )
    integration_check(integration)
    integration.save()
    return integration


# integration_create's keywords, as the fields they set (`mode` is the default mode of a run)
_INTEGRATION_KEYWORDS = {
    "customer": "customer",
    "slug": "slug",
    "target": "target",
    "mode": "default_mode",
    "is_active": "is_active",
    "field_map": "field_map",
    "adapter": "adapter",
    "max_error_rate": "max_error_rate",
    "max_deletes_percent": "max_deletes_percent",
    "webhook_url": "webhook_url",
    "webhook_secret": "webhook_secret",
    "contacts": "contacts",
}


def integration_update(*, integration: Integration, **changes) -> Integration:
    """Change settings of an integration, given as integration_create's keywords (those not given are
    kept), through integration_create's checks."""
    fields = {}
    for keyword, value in changes.items():
        if keyword not in _INTEGRATION_KEYWORDS:
            raise TypeError(f"integration_update() got an unexpected keyword argument {keyword!r}")
        fields[_INTEGRATION_KEYWORDS[keyword]] = list(value) if keyword == "contacts" else value
    _change(integration, fields, integration_check)
    return integration


def integration_check(integration: Integration) -> None:
    """Every check of an integration's settings, new or changed: InvalidInput or Conflict, with
    `details` naming the setting (the admin form shows the message beside that field). Normalises
    the field map (JSON text to an object)."""
    integration.field_map = validate_integration_settings(
        target=integration.target,
        field_map=integration.field_map or {},
        adapter=integration.adapter,
        webhook_url=integration.webhook_url,
        webhook_secret=integration.webhook_secret,
    )
    if integration.default_mode not in Mode.values:
        raise InvalidInput(f"mode must be one of {', '.join(Mode.values)}", details={"default_mode": "invalid"})
    if not 0 <= integration.max_error_rate <= 1:
        raise InvalidInput("max error rate must be between 0 and 1", details={"max_error_rate": "out of range"})
    if not 0 <= integration.max_deletes_percent <= 100:
        raise InvalidInput(
            "max deletes percent must be between 0 and 100", details={"max_deletes_percent": "out of range"}
        )
    validate_emails(integration.contacts or [])
    taken = Integration.objects.filter(customer_id=integration.customer_id, slug=integration.slug)
    if taken.exclude(pk=integration.pk).exists():
        raise Conflict(
            f"customer {integration.customer.slug} already has an integration {integration.slug!r}",
            details={"slug": "taken"},
        )
    _full_clean(integration, exclude=["customer"])


@transaction.atomic
def api_key_create(*, customer: Customer, name: str = "default") -> tuple[ApiKey, str]:
    """A new key; the whole key `<prefix>.<secret>` exists only in the return value."""
    key, raw = ApiKey.objects.create_key(customer=customer, name=name or "default")
    return key, raw


def api_key_revoke(*, prefix: str) -> ApiKey:
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise NotFound(f"no API key with prefix {prefix!r}")
    if not key.revoked:
        key.revoked = True
        key.save(update_fields=["revoked"])
    return key


def validate_emails(emails: list[str]) -> None:
    """The one check of contact e-mails (a customer's, an integration's), for every writer."""
    validate = EmailValidator()
    for email in emails:
        try:
            validate(email)
        except ValidationError:
            raise InvalidInput(f"{email!r} is not an e-mail address", details={"contacts": "invalid"}) from None


def _change(obj, changes: dict, check) -> None:
    """Set the fields `changes` names, check the result and save it; refused, `obj` keeps its values."""
    before = {field: getattr(obj, field) for field in changes}
    for field, value in changes.items():
        setattr(obj, field, value)
    try:
        check(obj)
    except IntegrationsError:
        for field, value in before.items():
            setattr(obj, field, value)
        raise
    obj.save()


def _full_clean(obj, exclude=None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = {k: "; ".join(v) for k, v in exc.message_dict.items()}
        raise InvalidInput("; ".join(f"{k}: {v}" for k, v in details.items()), details=details) from None
