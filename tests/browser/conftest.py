"""Playwright against pytest-django's live server, driving Debian's Chromium (/usr/bin/chromium).
Playwright's own browser download is not used. Skipped, with the reason, when Chromium is absent."""

import os
from pathlib import Path

import pytest

from tests.support import scenarios

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_passwords(fast_password_hashing):
    """The admin user logs in through the form."""


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # the admin's navigation sidebar folded, as a reviewer with a wide list would have it
    context.add_init_script("window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def world(live_server):
    world = scenarios.build()
    scenarios.spread_over_days(world.stuck.integration, days=14)
    scenarios.make_superuser("admin")
    return world


@pytest.fixture
def logged_in(page, live_server, world):
    """A page logged in through the admin's login form."""
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", scenarios.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#sync-dashboard")
    return page


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path
