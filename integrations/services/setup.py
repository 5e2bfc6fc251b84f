"""Customers, integrations and API keys: what staff set up (the commands and the admin use these)."""

import base64
import binascii
import json

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from ..exceptions import Conflict, InvalidInput, NotFound
from ..models import ApiKey, Customer, Integration, Mode
from ..targets import get_adapter, get_target


def customer_create(*, slug: str, name: str, emails: list[str] | None = None) -> Customer:
    emails = list(emails or [])
    _check_emails(emails)
    if Customer.objects.filter(slug=slug).exists():
        raise Conflict(f"a customer with slug {slug!r} already exists")
    customer = Customer(slug=slug, name=name, contacts=emails)
    _full_clean(customer)
    customer.save()
    return customer


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


def validate_integration_settings(*, target: str, field_map, adapter: str = "", webhook_url: str = "",
                                  webhook_secret: str = "") -> dict:
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


def integration_create(*, customer: Customer, slug: str, target: str, mode: str = Mode.FULL,
                       max_error_rate: float = 0.0, max_deletes_percent: float = 20.0, webhook_url: str = "",
                       webhook_secret: str = "", field_map=None, adapter: str = "",
                       contacts: list[str] | None = None) -> Integration:
    field_map = validate_integration_settings(target=target, field_map=field_map or {}, adapter=adapter,
                                              webhook_url=webhook_url, webhook_secret=webhook_secret)
    if mode not in Mode.values:
        raise InvalidInput(f"mode must be one of {', '.join(Mode.values)}")
    if not 0 <= max_error_rate <= 1:
        raise InvalidInput("max error rate must be between 0 and 1")
    if not 0 <= max_deletes_percent <= 100:
        raise InvalidInput("max deletes percent must be between 0 and 100")
    _check_emails(contacts or [])
    if Integration.objects.filter(customer=customer, slug=slug).exists():
        raise Conflict(f"customer {customer.slug} already has an integration {slug!r}")
    integration = Integration(
        customer=customer, slug=slug, target=target, default_mode=mode, max_error_rate=max_error_rate,
        max_deletes_percent=max_deletes_percent, webhook_url=webhook_url, webhook_secret=webhook_secret,
        field_map=field_map, adapter=adapter, contacts=list(contacts or []),
    )
    _full_clean(integration, exclude=["customer"])
    integration.save()
    return integration


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


def _check_emails(emails: list[str]) -> None:
    validate = EmailValidator()
    for email in emails:
        try:
            validate(email)
        except ValidationError:
            raise InvalidInput(f"{email!r} is not an e-mail address") from None


def _full_clean(obj, exclude=None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = {k: "; ".join(v) for k, v in exc.message_dict.items()}
        raise InvalidInput("; ".join(f"{k}: {v}" for k, v in details.items()), details=details) from None
