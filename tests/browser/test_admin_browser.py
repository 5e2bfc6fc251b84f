"""The staff admin in a real browser: what a person sees and clicks."""

import re

import pytest

from catalog.models import Product
from integrations.models import SyncRun
from tests.support.scenarios import held_integration, products_file

from .conftest import screenshot

WIDE = {"width": 1400, "height": 900}

pytestmark = pytest.mark.browser


def test_login_filter_failed_open_run_follow_errors(logged_in, live_server, world):
    page = logged_in
    page.set_viewport_size(WIDE)
    assert page.locator("#site-name").inner_text().strip() != ""
    page.click("#content-main a:text-is('Sync runs')")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == SyncRun.objects.count()
    screenshot(page, "admin-runs.png")

    page.locator("#changelist-filter a", has_text=re.compile(r"^Failed$")).click()
    page.wait_for_url(re.compile(r"status__exact=failed"))
    badges = page.locator("#result_list .run-status").all_inner_texts()
    assert badges and set(badges) == {"failed"}
    assert len(badges) == SyncRun.objects.filter(status="failed").count()

    page.click(f"#result_list a:has-text('{str(world.failed.pk)[:8]}')")
    page.wait_for_selector(".run-counts-table")
    assert page.locator(".field-status_badge .run-status").inner_text() == "failed"
    assert "above the integration's max_error_rate" in page.locator(".field-message").inner_text()
    assert page.locator(".run-counts-table td.count-received").inner_text() == "3"
    assert page.locator(".run-counts-table td.count-failed").inner_text() == "2"
    assert "BAD-1" in page.locator("table.first-errors").inner_text()
    assert "run.failed" in page.locator("body").inner_text()  # the webhook delivery
    screenshot(page, "admin-run.png")

    page.click("a.all-errors")
    page.wait_for_url(re.compile(rf"recorderror/\?run={world.failed.pk}"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "2 record errors" in page.locator("#changelist-form .paginator").inner_text()
    page.click("#result_list a:text-is('BAD-1')")
    raw = page.locator("pre.raw-json").inner_text()
    assert '"sku": "BAD-1"' in raw and '\n  "price": "-3"' in raw


def test_index_chart_failing_integrations_and_stuck_runs(logged_in, live_server, world):
    page = logged_in
    page.set_viewport_size(WIDE)
    bars = page.locator("svg.runs-chart g.bar")
    assert bars.count() == 14
    assert page.locator("svg.runs-chart rect[data-status=failed]").count() >= 1
    assert page.locator("svg.runs-chart rect[data-status=succeeded]").count() >= 10
    assert page.locator(".runs-chart-legend").inner_text().count("succeeded") == 1
    attention = page.locator("#sync-attention").inner_text()
    assert "globex/feed" in attention and "acme/products" in attention and "needs review" in attention
    assert str(world.stuck.pk)[:8] in page.locator("#sync-stuck").inner_text()
    screenshot(page, "admin-index.png")
    # a bar segment leads to that day's runs of that status
    page.locator("svg.runs-chart rect[data-status=failed]").first.click()
    page.wait_for_selector("#result_list")
    assert set(page.locator("#result_list .run-status").all_inner_texts()) == {"failed"}


def test_approve_a_held_run_and_see_its_rows_deleted(logged_in, live_server, world):
    page = logged_in
    page.goto(f"{live_server.url}/admin/integrations/syncrun/")
    page.locator("#changelist-filter a", has_text=re.compile(r"^Needs Review$")).click()
    page.click(f"#result_list a:has-text('{str(world.held.pk)[:8]}')")
    assert page.locator(".field-status_badge .run-status").inner_text() == "needs review"
    page.click("a.run-tool:has-text('Review')")
    assert "Approving would delete 17 rows" in page.locator(".would-delete").inner_text()
    sample = page.locator(".sample-keys").inner_text()
    assert "SKU-003" in sample and "SKU-019" in sample and "SKU-002" not in sample
    page.check("#confirm-delete")
    page.click("#approve-run")
    page.wait_for_selector(".messagelist")
    assert "approved" in page.locator(".messagelist").inner_text()
    assert page.locator(".field-status_badge .run-status").inner_text() == "succeeded"
    assert page.locator(".run-counts-table td.count-deleted").inner_text() == "17"
    page.goto(f"{live_server.url}/admin/catalog/product/?customer__id__exact={world.customer.pk}")
    assert "3 products" in page.locator("#changelist-form .paginator").inner_text()
    assert Product.objects.filter(customer=world.customer).count() == 3


def test_sync_a_file_preview_then_run(logged_in, live_server, world, tmp_path):
    page = logged_in
    path = products_file(tmp_path, n=5)
    page.goto(f"{live_server.url}/admin/integrations/integration/{world.feed.pk}/change/")
    page.click("a.sync-file-link")
    page.set_input_files("#id_file", str(path))
    page.check("input[name=mode][value=incremental]")
    page.click("#preview-file")
    page.wait_for_selector("#preview[data-status=succeeded]")
    assert page.locator("#preview td.count-created").inner_text() == "5"
    assert page.locator("#preview td.count-failed").inner_text() == "0"
    assert "dry run: nothing was applied" in page.locator(".preview-message").inner_text().lower()
    assert Product.objects.filter(customer=world.other).count() == 0
    page.click("#run-for-real")
    page.wait_for_selector(".run-counts-table")
    assert "started" in page.locator(".messagelist").inner_text()
    assert page.locator(".field-status_badge .run-status").inner_text() == "succeeded"
    assert page.locator(".run-counts-table td.count-created").inner_text() == "5"
    assert page.locator(".field-upload_filename").inner_text().strip().endswith("products.json")
    assert Product.objects.filter(customer=world.other).count() == 5


def test_review_page_lists_every_key_and_asks_before_approving(logged_in, live_server, world):
    page = logged_in
    page.set_viewport_size(WIDE)
    _, _, held = held_integration(world.other, slug="big", rows=60, keep=3)
    page.goto(f"{live_server.url}/admin/integrations/syncrun/{held.pk}/change/")
    assert "Approving would delete 57 rows" in page.locator("#held-run .would-delete").inner_text()
    screenshot(page, "admin-held-run.png")
    page.click("a.run-tool:has-text('Review')")
    page.wait_for_selector(".would-delete")
    # a key never wraps inside itself
    heights = page.locator(".sample-keys code").evaluate_all("els => els.map(e => e.getClientRects().length)")
    assert heights and set(heights) == {1}
    # the run id in the blue header bar is light on blue
    colour = page.locator(".confirm-run h2 a code").evaluate("e => getComputedStyle(e).color")
    assert colour in ("rgb(255, 255, 255)",), colour
    # Approve is the red one
    approve_bg = page.locator("#approve-run").evaluate("e => getComputedStyle(e).backgroundColor")
    reject_bg = page.locator("#reject-run").evaluate("e => getComputedStyle(e).backgroundColor")
    assert approve_bg != reject_bg and approve_bg.startswith("rgb(1") and approve_bg.endswith(", 33)"), approve_bg
    screenshot(page, "admin-review.png")
    with page.expect_download() as download:
        page.click("a.download-keys")
    lines = open(download.value.path()).read().splitlines()
    assert lines[0] == "sku" and lines[1:] == [f"SKU-{i:03d}" for i in range(3, 60)]
    # approving without ticking the box does nothing
    page.click("#approve-run")
    assert "tick the box" in page.locator(".messagelist").inner_text()
    held.refresh_from_db()
    assert held.status == SyncRun.Status.NEEDS_REVIEW
    page.check("#confirm-delete")
    page.click("#approve-run")
    page.wait_for_selector(".field-status_badge .run-status")
    assert page.locator(".field-status_badge .run-status").inner_text() == "succeeded"


def test_runs_list_fits_1400_pixels(logged_in, live_server, world):
    page = logged_in
    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/admin/integrations/syncrun/")
    page.wait_for_selector("#result_list")
    for width in (1400, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1], (width, overflow)
        for column in ("progress", "created_on"):
            box = page.locator(f"#result_list th.column-{column}").bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, column, box)
    assert page.locator("#result_list th.column-created_on").inner_text().strip().upper() == "CREATED AT"
    # the processing run says what it is doing, and the list says it reloads
    assert "validating 1 of 4 batches" in page.locator("#result_list").inner_text()
    assert page.locator("#runs-live").is_visible()


def test_history_shows_approve_and_revoke(logged_in, live_server, world):
    from integrations import services

    page = logged_in
    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/admin/integrations/syncrun/{world.held.pk}/review/")
    page.check("#confirm-delete")
    page.click("#approve-run")
    page.wait_for_selector(".messagelist")
    page.click("a.historylink")
    history = page.locator("#change-history").inner_text()
    assert "Approved the held run: applying it, deleting 17 row(s)" in history and "admin" in history

    key, _ = services.api_key_create(customer=world.customer, name="ci")
    page.goto(f"{live_server.url}/admin/integrations/customer/{world.customer.pk}/change/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"button.revoke-key[formaction*='{key.prefix}']")
    page.wait_for_selector(".messagelist")
    assert "is revoked" in page.locator(".messagelist").inner_text()
    page.goto(f"{live_server.url}/admin/")
    recent = page.locator("#recent-actions-module").inner_text()
    assert "ci" in recent and str(world.held.pk) in recent
    page.goto(f"{live_server.url}/admin/integrations/customer/{world.customer.pk}/history/")
    assert f"Revoked API key {key.prefix} (ci)" in page.locator("#change-history").inner_text()
