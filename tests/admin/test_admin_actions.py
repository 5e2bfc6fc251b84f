"""The staff decisions through the admin, asserted by their outcomes: rows in the table, run
states, keys that work or not, files that sync, and what the pages say."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Product
from integrations.models import ApiKey, Integration, SyncRun
from tests.support import product, scenarios, sync
from tests.support.admin import change_form_data, integration_post, page_messages

pytestmark = pytest.mark.django_db(transaction=True)
S = SyncRun.Status


# --- held runs --------------------------------------------------------------------------------


def test_approve_from_the_changelist_confirms_then_deletes(boss, world):
    url = reverse("admin:integrations_syncrun_changelist")
    confirm = boss.post(url, {"action": "approve_runs", "_selected_action": [world.held.pk, world.failed.pk]})
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Approving would delete 17 rows" in html
    assert "SKU-003" in html and "SKU-019" in html and "SKU-000" not in html  # a sample of the keys
    assert str(world.failed.pk) not in html  # only held runs are offered
    assert scenarios.product_count(world.customer) == 20  # nothing happened yet
    done = boss.post(url, {"action": "approve_runs", "_selected_action": [world.held.pk], "post": "yes"}, follow=True)
    assert "1 run(s) approved: applying now." in page_messages(done)
    world.held.refresh_from_db()
    assert world.held.status == S.SUCCEEDED and world.held.deleted == 17 and world.held.reviewed_by == "boss"
    assert sorted(Product.objects.filter(customer=world.customer).values_list("sku", flat=True)) == [
        "SKU-000",
        "SKU-001",
        "SKU-002",
    ]


def test_review_page_rejects(boss, world):
    url = reverse("admin:integrations_syncrun_review", args=[world.held.pk])
    page = boss.get(url).content.decode()
    assert "Approve and delete 17 rows" in page and "Reject" in page and "17 rows" in page
    done = boss.post(url, {"decision": "reject"}, follow=True)
    assert "1 run(s) rejected: cancelled, nothing applied." in page_messages(done)
    world.held.refresh_from_db()
    assert world.held.status == S.CANCELLED and "rejected at review by boss" in world.held.message
    assert scenarios.product_count(world.customer) == 20


def test_sample_follows_the_table_as_it_is_now(boss, world):
    Product.objects.filter(customer=world.customer, sku__in=["SKU-018", "SKU-019"]).delete()
    html = boss.get(reverse("admin:integrations_syncrun_review", args=[world.held.pk])).content.decode()
    assert "Approving would delete 15 rows" in html and "held counting 17" in html and "SKU-019" not in html


def test_reviewer_may_review_but_not_change(reviewer, world, tmp_path):
    done = reviewer.post(
        reverse("admin:integrations_syncrun_review", args=[world.held.pk]),
        {"decision": "approve", "confirm_delete": "yes"},
    )
    assert done.status_code == 302
    world.held.refresh_from_db()
    assert world.held.status == S.SUCCEEDED and scenarios.product_count(world.customer) == 3
    change = reverse("admin:integrations_integration_change", args=[world.feed.pk])
    assert reviewer.post(change, {"slug": "renamed"}).status_code == 403
    assert Integration.objects.get(pk=world.feed.pk).slug == "feed"
    upload = SimpleUploadedFile("p.json", b"[]")
    sync_file = reverse("admin:integrations_integration_sync_file", args=[world.feed.pk])
    assert reviewer.post(sync_file, {"file": upload, "mode": "full", "_preview": "1"}).status_code == 403
    key = ApiKey.objects.create_key(customer=world.customer, name="k")[0]
    revoke = reverse("admin:integrations_customer_revoke_key", args=[world.customer.pk, key.prefix])
    assert reviewer.post(revoke).status_code == 403
    assert not ApiKey.objects.get(pk=key.pk).revoked


def test_staff_without_the_group_cannot_review(client, world):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("clerk", password="x", is_staff=True))
    assert (
        client.post(
            reverse("admin:integrations_syncrun_review", args=[world.held.pk]), {"decision": "approve"}
        ).status_code
        == 403
    )
    world.held.refresh_from_db()
    assert world.held.status == S.NEEDS_REVIEW


# --- cancel, retry, errors CSV ------------------------------------------------------------------


def test_cancel_action_and_page(boss, world):
    url = reverse("admin:integrations_syncrun_changelist")
    done = boss.post(
        url, {"action": "cancel_runs", "_selected_action": [world.receiving.pk, world.succeeded.pk]}, follow=True
    )
    assert "1 run(s) cancelled." in page_messages(done)
    world.receiving.refresh_from_db()
    assert world.receiving.status == S.CANCELLED and "cancelled by boss" in world.receiving.message
    cancel = reverse("admin:integrations_syncrun_cancel", args=[world.stuck.pk])
    assert "Yes, cancel it" in boss.get(cancel).content.decode()
    boss.post(cancel)
    world.stuck.refresh_from_db()
    assert world.stuck.status == S.CANCELLED


def test_retry_a_failed_run_from_its_stored_batches(boss, world):
    world.feed.max_error_rate = 1.0
    world.feed.save()
    done = boss.post(reverse("admin:integrations_syncrun_retry", args=[world.failed.pk]), follow=True)
    new = SyncRun.objects.get(retry_of=world.failed)
    assert done.request["PATH_INFO"] == reverse("admin:integrations_syncrun_change", args=[new.pk])
    assert f"run {world.failed.pk} retried as run {new.pk}." in page_messages(done)
    assert new.status == S.PARTIAL and new.received == 3 and new.created == 1 and new.failed == 2
    assert Product.objects.filter(customer=world.other, sku="OK-1").exists()
    refused = boss.post(
        reverse("admin:integrations_syncrun_changelist"),
        {"action": "retry_runs", "_selected_action": [world.succeeded.pk]},
        follow=True,
    )
    assert "none of the selected runs failed or was cancelled" in page_messages(refused)


def test_errors_csv_neutralises_formulas(boss, world):
    response = boss.get(reverse("admin:integrations_syncrun_errors_csv", args=[world.failed.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f"errors-{world.failed.pk}.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert list(rows[0]) == [
        "sku",
        "name",
        "price",
        "currency",
        "quantity",
        "active",
        "attributes",
        "error_code",
        "error_message",
        "error_fields",
        "error_seq",
        "error_index",
    ]
    bad = next(r for r in rows if r["sku"] == "BAD-1")
    # a formula is neutralised, a plain number is not
    assert bad["name"].startswith("'=HYPERLINK") and bad["price"] == "-3" and bad["error_code"] == "invalid"
    keyless = next(r for r in rows if r["error_code"] == "missing_key")
    assert keyless["sku"] == "" and keyless["name"] == "no key" and keyless["price"] == "1"
    several = boss.post(
        reverse("admin:integrations_syncrun_changelist"),
        {"action": "download_errors", "_selected_action": [world.failed.pk, world.succeeded.pk]},
    )
    lines = b"".join(several.streaming_content).decode().splitlines()
    assert lines[0].startswith("run,sku,") and len(lines) == 3


# --- customers and API keys ---------------------------------------------------------------------


def test_api_key_is_shown_once_and_revoked_at_once(boss, world):
    url = reverse("admin:integrations_customer_change", args=[world.customer.pk])
    data = change_form_data(boss.get(url))
    n = int(data["api_keys-TOTAL_FORMS"])
    data.update({"api_keys-TOTAL_FORMS": n + 1, f"api_keys-{n}-name": "ERP nightly", "_continue": "1"})
    saved = boss.post(url, data, follow=True)
    shown = [m for m in page_messages(saved) if "New API key ERP nightly" in m]
    assert len(shown) == 1
    raw = shown[0].split('<code class="new-api-key">')[1].split("</code>")[0]
    key = ApiKey.objects.get(customer=world.customer, name="ERP nightly")
    assert raw.startswith(key.prefix + ".") and ApiKey.objects.is_valid(raw)
    again = boss.get(url).content.decode()
    assert raw not in again and key.prefix in again and "Revoke" in again
    revoked = boss.post(
        reverse("admin:integrations_customer_revoke_key", args=[world.customer.pk, key.prefix]), follow=True
    )
    assert f"API key {key.prefix} is revoked" in " ".join(page_messages(revoked))
    assert not ApiKey.objects.is_valid(raw)


def test_customer_contacts_are_checked(boss, world):
    url = reverse("admin:integrations_customer_change", args=[world.customer.pk])
    data = change_form_data(boss.get(url))
    data["contacts"] = "ops@acme.example\nnot-an-address"
    response = boss.post(url, data)
    assert (
        response.status_code == 200
        and "&#x27;not-an-address&#x27; is not an e-mail address" in response.content.decode()
    )
    data["contacts"] = "ops@acme.example, cto@acme.example"
    boss.post(url, data)
    world.customer.refresh_from_db()
    assert world.customer.contacts == ["ops@acme.example", "cto@acme.example"]


# --- integrations: validated settings -----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"field_map": '{"Title": "title"}'}, "which is not a field of catalog.product"),
        ({"field_map": "[1, 2]"}, "field map must be a JSON object"),
        ({"field_map": "{nope"}, "Enter a valid JSON."),
        ({"adapter": "no-such-adapter"}, "Select a valid choice"),
        ({"target": "catalog.nothing"}, "Select a valid choice"),
        ({"webhook_url": "ftp://example.com/x"}, "is not an http(s) URL"),
        ({"webhook_url": "http://10.1.2.3/hook"}, "resolves to the non-public address 10.1.2.3"),
        ({"webhook_url": "http://localhost:8000/hook"}, "localhost resolves to the non-public address"),
        ({"webhook_secret": "plain-secret"}, "webhook secret must start with whsec_"),
        ({"max_error_rate": "150"}, "less than or equal to 100"),
        ({"slug": "products"}, "already exists"),
    ],
)
def test_integration_settings_are_validated(boss, integration, settings, overrides, message):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    response = boss.post(
        reverse("admin:integrations_integration_add"), integration_post(integration.customer, **overrides)
    )
    assert response.status_code == 200, response.get("Location")
    assert message in response.content.decode()
    assert Integration.objects.count() == 1


def test_integration_created_with_every_setting(boss, customer):
    response = boss.post(
        reverse("admin:integrations_integration_add"),
        integration_post(
            customer,
            adapter="cents-and-flags",
            webhook_url="https://hooks.example.com/acme",
            webhook_secret="whsec_" + "B" * 32,
            default_mode="incremental",
        ),
    )
    assert response.status_code == 302
    erp = Integration.objects.get(customer=customer, slug="erp")
    assert erp.field_map == {"Title": "name", "Legacy": None} and erp.adapter == "cents-and-flags"
    assert erp.contacts == ["a@acme.example"] and erp.default_mode == "incremental" and erp.max_error_rate == 0.05


# --- "Sync a file" ------------------------------------------------------------------------------


FILES = {
    "json": json.dumps([product("F-1"), product("F-2"), product("SKU-000", price="1.00")]),
    "ndjson": "\n".join(json.dumps(r) for r in [product("F-1"), product("F-2"), product("SKU-000", price="1.00")]),
    "csv": "sku,name,price,currency\nF-1,Product F-1,9.99,EUR\nF-2,Product F-2,9.99,EUR\nSKU-000,Product SKU-000,1.00,EUR\n",
}


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
def test_sync_a_file_preview_then_run(boss, world, fmt):
    world.held.delete()  # let acme/products take new runs
    url = reverse("admin:integrations_integration_sync_file", args=[world.products.pk])
    assert "Preview (dry run)" in boss.get(url).content.decode()
    upload = SimpleUploadedFile(f"products.{fmt}", FILES[fmt].encode())
    response = boss.post(url, {"file": upload, "mode": "incremental", "_preview": "1"})
    assert response.status_code == 302 and "?preview=" in response["Location"]
    preview = SyncRun.objects.get(dry_run=True, integration=world.products)
    assert preview.source == SyncRun.Source.ADMIN
    html = boss.get(response["Location"]).content.decode()
    assert 'data-status="succeeded"' in html
    assert '<td class="count-created">2</td>' in html and '<td class="count-updated">1</td>' in html
    assert "Run it for real (incremental)" in html
    assert scenarios.product_count(world.customer) == 20  # a preview applies nothing
    done = boss.post(url, {"preview": preview.pk, "_run": "1"}, follow=True)
    real = SyncRun.objects.get(dry_run=False, integration=world.products, source=SyncRun.Source.ADMIN)
    assert done.request["PATH_INFO"] == reverse("admin:integrations_syncrun_change", args=[real.pk])
    assert real.status == S.SUCCEEDED and (real.created, real.updated) == (2, 1)
    assert "run-status-succeeded" in done.content.decode()
    assert scenarios.product_count(world.customer) == 22
    assert Product.objects.get(customer=world.customer, sku="SKU-000").price == 1


def test_sync_file_preview_shows_errors_and_refuses_bad_files(boss, world):
    url = reverse("admin:integrations_integration_sync_file", args=[world.feed.pk])
    bad = SimpleUploadedFile("bad.json", json.dumps([product("A"), product("B", price="x")]).encode())
    response = boss.post(url, {"file": bad, "mode": "full", "_preview": "1"}, follow=True)
    html = response.content.decode()
    assert 'data-status="failed"' in html and "Run for real, this file would fail" in html
    assert "First errors" in html and "All 1 error →" in html
    unknown = SimpleUploadedFile("data.txt", b"hello")
    html = boss.post(url, {"file": unknown, "mode": "full", "_preview": "1"}).content.decode()
    assert "cannot tell the format of" in html
    other = sync(world.products, [product("X")], dry_run=True)
    assert boss.get(f"{url}?preview={other.pk}").status_code == 404  # another integration's preview


def test_sync_now_without_preview(boss, world):
    url = reverse("admin:integrations_integration_sync_file", args=[world.feed.pk])
    upload = SimpleUploadedFile("p.csv", FILES["csv"].encode())
    done = boss.post(url, {"file": upload, "mode": "incremental", "_sync": "1"}, follow=True)
    run = SyncRun.objects.get(integration=world.feed, source=SyncRun.Source.ADMIN)
    assert run.status == S.SUCCEEDED and run.created == 3 and not run.dry_run
    assert any("started" in m for m in page_messages(done))


def test_preview_follows_a_run_that_a_worker_has_not_finished(boss, world, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # the tasks go to the django-q2 queue, as in production
    url = reverse("admin:integrations_integration_sync_file", args=[world.feed.pk])
    upload = SimpleUploadedFile("p.ndjson", FILES["ndjson"].encode())
    response = boss.post(url, {"file": upload, "mode": "full", "_preview": "1"}, follow=True)
    html = response.content.decode()
    preview = SyncRun.objects.get(integration=world.feed, dry_run=True)
    assert preview.status == S.QUEUED
    assert 'data-status="queued"' in html and 'http-equiv="refresh"' in html and "Checking the file" in html
    assert "run-for-real" not in html  # offered once the preview has ended
