"""Issue 13 in the admin: the review decision staff can trust (every key to be deleted, a
confirmed approval), every staff action in the admin's history, and lists that read at a glance."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product
from integrations import services
from integrations.models import ApiKey, Integration, SyncBatch, SyncRun
from tests.support import product, scenarios, sync
from tests.support.admin import page_messages

pytestmark = pytest.mark.django_db(transaction=True)
S = SyncRun.Status


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def history(obj) -> list[str]:
    return [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(obj.pk)).order_by("action_time")]


# --- the review decision --------------------------------------------------------------------------


def test_held_run_page_shows_count_sample_and_download_link(boss, world):
    html = boss.get(reverse("admin:integrations_syncrun_change", args=[world.held.pk])).content.decode()
    held = html.split('id="held-run"')[1]
    assert "Approving would delete 17 rows" in held
    assert "<code>SKU-003</code>" in held and "<code>SKU-019</code>" in held
    assert reverse("admin:integrations_syncrun_deletions_csv", args=[world.held.pk]) in held


def test_deletions_csv_lists_every_key_the_apply_then_deletes(boss, world):
    # more rows than the sample shows: 40 rows, a held snapshot of 3
    integration, _, held = scenarios.held_integration(world.other, slug="big", rows=40, keep=3)
    review = boss.get(reverse("admin:integrations_syncrun_review", args=[held.pk])).content.decode()
    assert "the first 20" in review and "and 17 more" in review
    response = boss.get(reverse("admin:integrations_syncrun_deletions_csv", args=[held.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows[0] == ["sku"]
    listed = [r[0] for r in rows[1:]]
    assert listed == [f"SKU-{i:03d}" for i in range(3, 40)]
    before = set(Product.objects.filter(customer=world.other).values_list("sku", flat=True))
    boss.post(
        reverse("admin:integrations_syncrun_review", args=[held.pk]), {"decision": "approve", "confirm_delete": "yes"}
    )
    held.refresh_from_db()
    after = set(Product.objects.filter(customer=world.other).values_list("sku", flat=True))
    assert held.status == S.SUCCEEDED and sorted(before - after) == listed  # what the file said, deleted


def test_deletions_csv_of_composite_keys(boss, customer):
    from crm.models import OrderLine

    lines = services.integration_create(customer=customer, slug="lines", target="crm.order_line")
    line = {"sku": "S", "quantity": 1, "unit_price": "1.00"}
    sync(lines, [{"order_no": f"O-{n}", "line": k, **line} for n in range(8) for k in (1, 2)])
    held = sync(lines, [{"order_no": "O-0", "line": 1, **line}])
    assert held.status == S.NEEDS_REVIEW, held.message
    rows = csv_rows(boss.get(reverse("admin:integrations_syncrun_deletions_csv", args=[held.pk])))
    assert rows[0] == ["order_no", "line"]
    assert len(rows) - 1 == 15 == OrderLine.objects.filter(customer=customer).count() - 1
    assert ["O-0", "2"] in rows and ["O-7", "1"] in rows and ["O-0", "1"] not in rows


def test_deletions_csv_is_for_reviewers_only(client, world):
    url = reverse("admin:integrations_syncrun_deletions_csv", args=[world.held.pk])
    assert client.get(url).status_code == 302  # to the login page
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("clerk", password="x", is_staff=True))
    assert client.get(url).status_code == 403
    client.force_login(scenarios.make_reviewer())
    assert client.get(url).status_code == 200
    assert client.get(reverse("admin:integrations_syncrun_deletions_csv", args=[world.failed.pk])).status_code == 404


def test_approve_without_the_confirmation_box_does_nothing(boss, world):
    url = reverse("admin:integrations_syncrun_review", args=[world.held.pk])
    page = boss.get(url).content.decode()
    assert 'name="confirm_delete"' in page and 'id="approve-run"' in page and "danger" in page
    response = boss.post(url, {"decision": "approve"})
    assert response.status_code == 200
    assert "tick the box" in " ".join(page_messages(response))
    world.held.refresh_from_db()
    assert world.held.status == S.NEEDS_REVIEW and scenarios.product_count(world.customer) == 20
    assert boss.post(url, {"decision": "approve", "confirm_delete": "yes"}).status_code == 302
    world.held.refresh_from_db()
    assert world.held.status == S.SUCCEEDED and scenarios.product_count(world.customer) == 3


# --- the admin's history ----------------------------------------------------------------------------


def test_every_staff_decision_is_in_the_history(boss, world):
    review = reverse("admin:integrations_syncrun_review", args=[world.held.pk])
    boss.post(review, {"decision": "approve", "confirm_delete": "yes"})
    assert history(world.held) == ["Approved the held run: applying it, deleting 17 row(s)"]
    entry = LogEntry.objects.get(object_id=str(world.held.pk))
    assert entry.user.username == "boss" and timezone.now() - entry.action_time < timedelta(minutes=1)

    _, _, second = scenarios.held_integration(world.other, slug="second")
    boss.post(reverse("admin:integrations_syncrun_review", args=[second.pk]), {"decision": "reject"})
    assert history(second) == ["Rejected the held run: cancelled, nothing applied"]

    boss.post(reverse("admin:integrations_syncrun_cancel", args=[world.receiving.pk]))
    assert history(world.receiving) == ["Cancelled the run (it was receiving)"]

    boss.post(reverse("admin:integrations_syncrun_retry", args=[world.failed.pk]))
    retried = SyncRun.objects.get(retry_of=world.failed)
    assert history(world.failed) == [f"Retried the run as run {retried.pk}"]

    # the changelist actions log the same way
    changelist = reverse("admin:integrations_syncrun_changelist")
    boss.post(changelist, {"action": "cancel_runs", "_selected_action": [world.stuck.pk]})
    assert history(world.stuck) == ["Cancelled the run (it was processing)"]

    # and they show in "Recent actions" on the index
    index = boss.get(reverse("admin:index")).content.decode()
    assert str(world.held.pk) in index and str(world.failed.pk) in index


def test_revoking_a_key_is_in_the_history(boss, world):
    key, _ = services.api_key_create(customer=world.customer, name="ci")
    boss.post(reverse("admin:integrations_customer_revoke_key", args=[world.customer.pk, key.prefix]))
    assert ApiKey.objects.get(pk=key.pk).revoked
    message = f"Revoked API key {key.prefix} (ci): requests with it are refused"
    assert history(key) == [message]
    assert message in history(world.customer)
    other, _ = services.api_key_create(customer=world.customer, name="other")
    boss.post(
        reverse("admin:integrations_apikey_changelist"), {"action": "revoke_keys", "_selected_action": [other.pk]}
    )
    assert history(other) == [f"Revoked API key {other.prefix} (other): requests with it are refused"]


def test_adding_a_key_inline_is_logged_as_added(boss, world):
    from tests.support.admin import change_form_data

    url = reverse("admin:integrations_customer_change", args=[world.customer.pk])
    data = change_form_data(boss.get(url))
    prefix = "api_keys"
    n = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(n + 1)
    data[f"{prefix}-{n}-name"] = "deploy"
    response = boss.post(url, data, follow=True)
    assert any("New API key deploy" in m for m in page_messages(response))
    messages = history(world.customer)
    assert messages and "Added API key" in messages[-1] and "deploy" in messages[-1]
    assert "No fields changed" not in messages[-1]


# --- lists that read at a glance ------------------------------------------------------------------


def test_runs_list_counts_seconds_phase_and_refresh(admin_client, world):
    SyncRun.objects.filter(pk=world.succeeded.pk).update(received=200000, created=199000, unchanged=1000)
    html = admin_client.get(reverse("admin:integrations_syncrun_changelist")).content.decode()
    assert "200,000 rcv" in html and "199,000 new" in html
    created = timezone.localtime(world.succeeded.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert created in html
    assert "validating 1 of 4 batches" in html and "waiting for review" in html
    assert 'http-equiv="refresh"' in html  # the stuck run is processing
    # nothing moving: no reload
    SyncRun.objects.filter(status__in=[S.PROCESSING, S.QUEUED]).update(status=S.FAILED, finished_at=timezone.now())
    html = admin_client.get(reverse("admin:integrations_syncrun_changelist")).content.decode()
    assert 'http-equiv="refresh"' not in html


def test_an_approved_runs_duration_leaves_out_the_wait(admin_client, world):
    run = world.held
    start = timezone.now() - timedelta(hours=2)
    # held after 4 s of validation, approved 2 hours later, applied in 6 s
    SyncRun.objects.filter(pk=run.pk).update(
        started_at=start,
        finished_at=start + timedelta(hours=2, seconds=10),
        reviewed_at=start + timedelta(hours=2, seconds=4),
        status=S.SUCCEEDED,
    )
    SyncBatch.objects.filter(run=run).update(validated_at=start + timedelta(seconds=4))
    html = admin_client.get(reverse("admin:integrations_syncrun_change", args=[run.pk])).content.decode()
    duration = html.split("field-duration")[1].split("field-waited")[0]
    assert re.search(r">10.0 s<", duration)  # the review's wait is shown apart, not in it
    assert "2 h 0 min" in html.split("field-waited")[1][:400]


def test_first_errors_of_a_processing_run_are_not_final(admin_client, world):
    html = admin_client.get(reverse("admin:integrations_syncrun_change", args=[world.stuck.pk])).content.decode()
    assert "none so far" in html


def test_needs_attention_lists_partial_and_cancelled_last_runs(admin_client, world):
    ok = services.integration_create(customer=world.other, slug="fine", target="catalog.product", max_error_rate=1.0)
    sync(ok, [product("A-1")])
    partial = services.integration_create(
        customer=world.other, slug="halfway", target="catalog.product", max_error_rate=1.0
    )
    run = sync(partial, [product("B-1"), {"sku": "B-2", "price": "x"}], mode="incremental")
    assert run.status == S.PARTIAL, run.message
    initech = services.customer_create(slug="initech", name="Initech")
    _, _, held = scenarios.held_integration(initech, slug="rejected")
    services.run_review(run=held, approve=False, user="boss")
    html = admin_client.get("/admin/").content.decode()
    attention = html.split('id="sync-attention"')[1].split('id="sync-stuck"')[0]
    for slug in ("globex/halfway", "initech/rejected", "globex/feed", "acme/products"):
        assert slug in attention, slug
    assert "globex/fine" not in attention
    assert re.search(r"Integrations needing attention \(4\)", attention)


def test_api_keys_read_active_or_revoked(admin_client, world):
    active, _ = services.api_key_create(customer=world.customer, name="live")
    gone, _ = services.api_key_create(customer=world.customer, name="gone")
    services.api_key_revoke(prefix=gone.prefix)
    html = admin_client.get(reverse("admin:integrations_apikey_changelist")).content.decode()
    row = {p: html.split(p, 1)[1].split("</tr>")[0] for p in (active.prefix, gone.prefix)}
    assert "key-state-active" in row[active.prefix] and "icon-no" not in row[active.prefix]
    assert "key-state-revoked" in row[gone.prefix]
    page = admin_client.get(reverse("admin:integrations_customer_change", args=[world.customer.pk])).content.decode()
    assert ">active<" in page and ">revoked<" in page


def test_integration_form_reads_both_limits_in_percent(admin_client, world):
    Integration.objects.filter(pk=world.feed.pk).update(max_error_rate=0.05, max_deletes_percent=20.0)
    html = admin_client.get(reverse("admin:integrations_integration_change", args=[world.feed.pk])).content.decode()
    assert re.search(r'name="max_error_rate"[^>]*value="5.0"', html) and "Max error rate (%)" in html
    assert re.search(r'name="max_deletes_percent"[^>]*value="20.0"', html) and "Max deletes (%)" in html
    customer = admin_client.get(reverse("admin:integrations_customer_change", args=[world.other.pk])).content.decode()
    assert "5 %" in customer and "20 %" in customer
