"""The admin adapts, the services decide: customer and integration forms save through the services
(one e-mail rule, one webhook URL check for the admin, the command and the service), the "preview,
then run for real" flow is a service, and the review permission is declared on the model."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from integrations import services, storage
from integrations.admin import REVIEWERS_GROUP, ensure_reviewer_group
from integrations.exceptions import Conflict, InvalidInput, NotFound, PayloadGone
from integrations.models import ApiKey, Customer, Integration, SyncRun
from tests.support.admin import change_form_data, integration_post, page_messages

pytestmark = pytest.mark.django_db(transaction=True)


def customer_post(**overrides):
    data = {
        "slug": "initech",
        "name": "Initech",
        "is_active": "on",
        "contacts": "ops@initech.example",
        "integrations-TOTAL_FORMS": "0",
        "integrations-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "1",
        "api_keys-INITIAL_FORMS": "0",
        "api_keys-0-name": "first",
    }
    data.update(overrides)
    return data


# --- customers ---------------------------------------------------------------------------------


def test_customer_added_in_the_admin_with_a_key_in_one_save(boss):
    response = boss.post(reverse("admin:integrations_customer_add"), customer_post(), follow=True)
    assert response.status_code == 200
    customer = Customer.objects.get(slug="initech")
    assert customer.contacts == ["ops@initech.example"] and customer.is_active
    key = ApiKey.objects.get(customer=customer)
    assert key.name == "first"
    assert any("New API key first for initech" in m for m in page_messages(response))


def test_customer_slug_taken_is_refused_beside_the_field(boss, customer):
    response = boss.post(reverse("admin:integrations_customer_add"), customer_post(slug="acme"))
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Customer.objects.count() == 1


def test_customer_change_saves_through_the_service(boss, customer):
    url = reverse("admin:integrations_customer_change", args=[customer.pk])
    data = change_form_data(boss.get(url))
    data.update({"name": "Acme Corp", "contacts": "a@acme.example; b@acme.example"})
    data.pop("is_active", None)
    assert boss.post(url, data).status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.contacts, customer.is_active) == (
        "Acme Corp",
        ["a@acme.example", "b@acme.example"],
        False,
    )


def test_customer_services_check_what_the_form_checks(customer, other_customer):
    with pytest.raises(InvalidInput, match="'nope' is not an e-mail address"):
        services.customer_update(customer=customer, emails=["nope"])
    with pytest.raises(Conflict, match="already exists"):
        services.customer_update(customer=customer, slug=other_customer.slug)
    with pytest.raises(InvalidInput, match="'x@' is not an e-mail address"):
        services.customer_create(slug="new", name="New", emails=["x@"])
    assert services.customer_update(customer=customer, name="Renamed").name == "Renamed"
    assert Customer.objects.get(pk=customer.pk).contacts == ["ops@acme.example"]


def test_create_customer_command_and_admin_share_the_email_rule(boss):
    with pytest.raises(CommandError, match="'not-an-address' is not an e-mail address"):
        call_command("create_customer", "hooli", "--name", "Hooli", "--email", "not-an-address")
    response = boss.post(reverse("admin:integrations_customer_add"), customer_post(contacts="not-an-address"))
    assert "&#x27;not-an-address&#x27; is not an e-mail address" in response.content.decode()
    assert not Customer.objects.exists()


# --- integrations ------------------------------------------------------------------------------


def test_integration_change_refuses_a_private_webhook_url(boss, integration, settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    data = integration_post(integration.customer, slug=integration.slug, webhook_url="http://169.254.169.254/")
    response = boss.post(url, data)
    assert response.status_code == 200 and "non-public address" in response.content.decode()
    integration.refresh_from_db()
    assert integration.webhook_url == ""
    data.update(webhook_url="https://93.184.215.14/hook", max_error_rate="2.5", default_mode="incremental")
    assert boss.post(url, data).status_code == 302
    integration.refresh_from_db()
    assert integration.webhook_url == "https://93.184.215.14/hook" and integration.max_error_rate == 0.025
    assert integration.default_mode == "incremental" and integration.field_map == {"Title": "name", "Legacy": None}


def test_integration_update_runs_integration_create_checks(integration, settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(InvalidInput, match="non-public"):
        services.integration_update(integration=integration, webhook_url="http://10.0.0.1/")
    with pytest.raises(InvalidInput, match="is not an e-mail address"):
        services.integration_update(integration=integration, contacts=["nope"])
    with pytest.raises(InvalidInput, match="max error rate"):
        services.integration_update(integration=integration, max_error_rate=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        services.integration_update(integration=integration, colour="blue")
    second = services.integration_create(customer=integration.customer, slug="second", target="catalog.product")
    with pytest.raises(Conflict, match="already has an integration 'products'"):
        services.integration_update(integration=second, slug="products")
    changed = services.integration_update(integration=second, mode="incremental", field_map='{"Title": "name"}')
    assert Integration.objects.get(pk=changed.pk).field_map == {"Title": "name"}
    assert Integration.objects.get(pk=changed.pk).default_mode == "incremental"


def test_create_integration_command_refuses_a_private_webhook_url(customer, settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(CommandError, match="non-public address"):
        call_command(
            "create_integration",
            "acme",
            "feed",
            "--target",
            "catalog.product",
            "--webhook-url",
            "http://127.0.0.1:8000/hook",
        )
    assert not Integration.objects.filter(slug="feed").exists()


# --- "preview, then run for real" --------------------------------------------------------------


CSV = b"sku,name,price,currency\nP-1,Product P-1,9.99,EUR\n"


def test_preview_run_reads_the_stored_file_back(integration):
    preview = services.upload_create(
        integration=integration,
        stream=SimpleUploadedFile("p.csv", CSV),
        filename="p.csv",
        dry_run=True,
        mode="incremental",
    )
    assert services.preview_get(integration=integration, run_id=str(preview.pk)) == preview
    for run_id in ("nonsense", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound):
            services.preview_get(integration=integration, run_id=run_id)
    real = services.preview_run(preview=SyncRun.objects.get(pk=preview.pk))
    real.refresh_from_db()
    assert not real.dry_run and real.mode == "incremental" and real.source == SyncRun.Source.ADMIN
    assert real.status == SyncRun.Status.SUCCEEDED and real.created == 1
    with pytest.raises(NotFound):  # a real run is no preview
        services.preview_get(integration=integration, run_id=real.pk)


def test_preview_whose_file_expired_says_upload_it_again(boss, integration):
    preview = services.upload_create(
        integration=integration, stream=SimpleUploadedFile("p.csv", CSV), filename="p.csv", dry_run=True
    )
    preview.refresh_from_db()
    storage.delete_payload(preview.upload_name)
    with pytest.raises(PayloadGone, match="expired from storage"):
        services.preview_run(preview=preview)
    url = reverse("admin:integrations_integration_sync_file", args=[integration.pk])
    response = boss.post(url, {"preview": str(preview.pk), "_run": "1"}, follow=True)
    assert "the previewed file has expired from storage; upload it again" in " ".join(page_messages(response))
    assert SyncRun.objects.filter(dry_run=False).count() == 0


# --- the review permission ---------------------------------------------------------------------


def test_review_permission_comes_from_the_model(transactional_db):
    assert ("review_syncrun", "Can review sync runs (approve, reject, cancel, retry, download errors)") in [
        tuple(p) for p in SyncRun._meta.permissions
    ]
    assert Permission.objects.filter(content_type__app_label="integrations", codename="review_syncrun").count() == 1
    group = ensure_reviewer_group()
    assert ensure_reviewer_group() == group == Group.objects.get(name=REVIEWERS_GROUP)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "review_syncrun" in codenames and "view_syncrun" in codenames
    assert not any(c.startswith(("change_", "add_", "delete_")) for c in codenames)
