"""Every admin URL of the integrations app, opened as a superuser and as a "Sync reviewers" member:
200 (or the designed 302/403), never 500. Plus what the main pages show."""

import re

import pytest
from django.urls import reverse

from integrations import services
from integrations.models import ApiKey, RecordError, SyncRun
from tests.support import scenarios
from tests.support.admin import admin_urls

pytestmark = pytest.mark.django_db(transaction=True)

READ_ONLY = {"syncrun", "recorderror", "webhookdelivery", "runchange"}


@pytest.fixture
def world(transactional_db):
    world = scenarios.build()
    key, _ = services.api_key_create(customer=world.customer, name="ci")
    world.extra["key"] = key
    return world


def expected_status(user_kind, model, url_name, url, world=None):
    if url_name.endswith("deletions_csv"):
        return 200 if str(world.held.pk) in url else 404  # only a held run has keys to delete
    if url_name.endswith("syncrun_undo"):  # the preview; a run that cannot be undone: back to its page
        undoable = world and not services.undo_refusal(SyncRun.objects.get(pk=url.split("/")[-3]))
        return 200 if undoable else 302
    if url_name == "" or url_name.endswith("revoke_key"):
        return 302  # the /<id>/ redirect to /<id>/change/; revoking is POST only
    superuser = user_kind == "superuser"
    if url_name.endswith("_add"):
        return 200 if superuser and model in ("customer", "integration") else 403
    if url_name.endswith("_delete"):
        return 200 if superuser and model not in READ_ONLY else 403
    if url_name.endswith("sync_file"):
        return 200 if superuser else 403
    return 200


@pytest.fixture(params=["superuser", "reviewer"])
def staff_client(request, client, world):
    user = scenarios.make_superuser() if request.param == "superuser" else scenarios.make_reviewer()
    client.force_login(user)
    client.user_kind = request.param
    return client


def test_every_admin_url_of_the_app(staff_client, world):
    urls = admin_urls(world)
    assert len(urls) > 40
    seen = set()
    for model, url_name, url in urls:
        response = staff_client.get(url)
        want = expected_status(staff_client.user_kind, model, url_name, url, world)
        assert response.status_code == want, (staff_client.user_kind, url, response.status_code)
        seen.add(url_name)
    for custom in (
        "integrations_integration_sync_file",
        "integrations_syncrun_review",
        "integrations_syncrun_cancel",
        "integrations_syncrun_retry",
        "integrations_syncrun_errors_csv",
        "integrations_customer_revoke_key",
        "integrations_syncrun_deletions_csv",
        "integrations_syncrun_undo",
    ):
        assert custom in seen


def test_site_pages_and_filters(staff_client, world):
    short = str(world.failed.pk)[:8]
    pages = [
        "/admin/",
        "/admin/integrations/",
        "/admin/integrations/syncrun/?status__exact=failed",
        f"/admin/integrations/syncrun/?status__exact=needs_review&integration__customer__id__exact={world.customer.pk}",
        f"/admin/integrations/syncrun/?integration__id__exact={world.feed.pk}&mode__exact=full",
        "/admin/integrations/syncrun/?created_at__gte=2020-01-01T00:00:00%2B00:00&dry_run__exact=0",
        f"/admin/integrations/syncrun/?q={short}",
        f"/admin/integrations/syncrun/?q={world.failed.pk}",
        "/admin/integrations/syncrun/?q=globex",
        f"/admin/integrations/recorderror/?run={world.failed.pk}",
        "/admin/integrations/recorderror/?run=not-a-uuid",
        "/admin/integrations/recorderror/?code__exact=invalid&q=BAD-1",
        f"/admin/integrations/recorderror/?run__integration__id__exact={world.feed.pk}",
        "/admin/integrations/integration/?is_active__exact=1",
        "/admin/integrations/apikey/?revoked__exact=0",
        f"/admin/integrations/integration/{world.feed.pk}/sync-file/?preview=nonsense",
    ]
    for url in pages:
        response = staff_client.get(url)
        if "sync-file" in url:
            assert response.status_code == (404 if staff_client.user_kind == "superuser" else 403), url
        else:
            assert response.status_code == 200, url


def test_runs_list_shows_status_counts_progress_and_filters(admin_client, world):
    response = admin_client.get("/admin/integrations/syncrun/?status__exact=failed")
    html = response.content.decode()
    assert str(world.failed.pk)[:8] in html and str(world.succeeded.pk)[:8] not in html
    assert "run-status-failed" in html and "globex" in html and "feed" in html
    assert re.search(r'count-failed"[^>]*>2 fail', html)
    html = admin_client.get("/admin/integrations/syncrun/").content.decode()
    assert "validating 1 of 4 batches" in html and "run-progress" in html  # the processing run's progress bar
    assert "3 h 0 min…" in html  # its duration so far
    for title in ("By status", "By customer", "By integration", "By created at"):
        assert title.lower() in html.lower()
    html = admin_client.get(f"/admin/integrations/syncrun/?q={str(world.held.pk)[:8]}").content.decode()
    assert str(world.held.pk)[:8] in html and str(world.failed.pk)[:8] not in html


def test_run_page_shows_counts_timings_batches_errors_and_deliveries(admin_client, world):
    html = admin_client.get(reverse("admin:integrations_syncrun_change", args=[world.failed.pk])).content.decode()
    assert "run-status-failed" in html and world.failed.message[:30] in html
    assert 'class="count-received"' in html and "Batches" in html
    assert "BAD-1" in html and "missing_key" in html  # the first errors
    assert f"?run={world.failed.pk}" in html and "All 2 errors" in html
    assert "run.failed" in html and "503" in html  # the webhook delivery and its attempt
    assert "Retry…" in html and "Download errors CSV" in html
    assert "Save" not in html  # read-only
    held = admin_client.get(reverse("admin:integrations_syncrun_change", args=[world.held.pk])).content.decode()
    assert "Review (approve / reject)…" in held and "Cancel…" in held
    stuck = admin_client.get(reverse("admin:integrations_syncrun_change", args=[world.stuck.pk])).content.decode()
    assert 'http-equiv="refresh"' in stuck  # a run in progress follows itself


def test_record_error_page_shows_raw_record_as_indented_json(admin_client, world):
    error = RecordError.objects.get(run=world.failed, key="BAD-1")
    html = admin_client.get(reverse("admin:integrations_recorderror_change", args=[error.pk])).content.decode()
    assert '<pre class="raw-json"' in html
    assert "{\n  &quot;sku&quot;: &quot;BAD-1&quot;,\n  &quot;name&quot;" in html
    assert "price" in html and "invalid" in html
    listing = admin_client.get("/admin/integrations/recorderror/?q=BAD-1").content.decode()
    assert "BAD-1" in listing and "(no key)" not in listing
    listing = admin_client.get(f"/admin/integrations/recorderror/?run={world.failed.pk}&code__exact=missing_key")
    assert "(no key)" in listing.content.decode() and "BAD-1" not in listing.content.decode()


def test_index_shows_chart_failing_integrations_and_stuck_runs(admin_client, world):
    scenarios.spread_over_days(world.feed, days=14)
    html = admin_client.get("/admin/").content.decode()
    assert '<svg class="runs-chart"' in html
    assert len(re.findall(r'<g class="bar" data-day=', html)) == 14
    assert 'data-status="failed"' in html and 'data-status="succeeded"' in html
    failing = html.split('id="sync-attention"')[1].split('id="sync-stuck"')[0]
    assert "acme/products" in failing and "needs review" in failing  # held
    assert "globex/feed" not in failing  # its last run (spread) is not failed... see below
    stuck = html.split('id="sync-stuck"')[1]
    assert str(world.stuck.pk)[:8] in stuck and "globex/late" in stuck


def test_index_lists_integration_whose_last_run_failed(admin_client, world):
    html = admin_client.get("/admin/").content.decode()
    failing = html.split('id="sync-attention"')[1].split('id="sync-stuck"')[0]
    assert "globex/feed" in failing and "failed" in failing
    assert "acme/products" in failing


def test_reviewer_sees_no_change_controls(client, world):
    client.force_login(scenarios.make_reviewer())
    html = client.get(reverse("admin:integrations_integration_change", args=[world.feed.pk])).content.decode()
    assert "Sync a file" not in html and 'name="_save"' not in html
    html = client.get(reverse("admin:integrations_customer_change", args=[world.customer.pk])).content.decode()
    assert "revoke-key" not in html
    assert ApiKey.objects.filter(customer=world.customer).exists()
    run_html = client.get(reverse("admin:integrations_syncrun_change", args=[world.held.pk])).content.decode()
    assert "Review (approve / reject)…" in run_html


def test_stuck_after_setting_is_used(admin_client, world, settings):
    settings.INTEGRATIONS_STUCK_AFTER = 5 * 3600
    stuck = admin_client.get("/admin/").content.decode().split('id="sync-stuck"')[1]
    assert str(world.stuck.pk)[:8] not in stuck
    assert SyncRun.objects.filter(status="processing").count() == 1
