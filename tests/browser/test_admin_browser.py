"""The staff admin in a real browser: what a person sees and clicks."""

import re

import pytest

from catalog.models import Product
from integrations.models import SyncRun

from .conftest import screenshot
from .scenarios import products_file

pytestmark = pytest.mark.browser


def test_login_filter_failed_open_run_follow_errors(logged_in, live_server, world):
    page = logged_in
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
    bars = page.locator("svg.runs-chart g.bar")
    assert bars.count() == 14
    assert page.locator("svg.runs-chart rect[data-status=failed]").count() >= 1
    assert page.locator("svg.runs-chart rect[data-status=succeeded]").count() >= 10
    assert page.locator(".runs-chart-legend").inner_text().count("succeeded") == 1
    failing = page.locator("#sync-failing").inner_text()
    assert "globex/feed" in failing and "acme/products" in failing and "needs review" in failing
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
