"""SQLite has one writer: a run's apply holds the write lock for its whole transaction. A batch post
and a `complete` of another customer arriving meanwhile wait for it and succeed (no 500 "database is
locked"), with the demo's settings and with a plain startproject database (no timeout, no WAL, no
transaction mode: the app sets what it needs on its connections, integrations/apps.py)."""

import threading
import time

import pytest
from django.db import connection, connections

from catalog.models import Product
from integrations.models import SyncRun
from integrations.services import processing
from tests.support import db_is_postgres, product, sync
from tests.support.api import API, json_body, open_run, post_batch

pytestmark = pytest.mark.skipif(db_is_postgres(), reason="SQLite's one-writer lock")


@pytest.fixture
def startproject_options():
    """The connections of this test use what `startproject` writes: OPTIONS empty."""
    settings_dict = connections["default"].settings_dict
    saved = settings_dict.get("OPTIONS", {})
    connection.close()
    settings_dict["OPTIONS"] = {}
    yield
    connection.close()
    settings_dict["OPTIONS"] = saved


def during_a_long_apply(monkeypatch, integration, hold: float, action):
    """Run `action` while another integration's apply holds SQLite's write lock for `hold` seconds
    (the real apply, made long by a pause at its end, inside its transaction)."""
    started = threading.Event()
    real = processing.plan_and_apply

    def slow(run, target):
        outcome = real(run, target)
        if run.integration_id == integration.pk:
            started.set()
            time.sleep(hold)
        return outcome

    monkeypatch.setattr(processing, "plan_and_apply", slow)
    held = {}

    def apply():
        try:
            held["run"] = sync(integration, [product(f"L{i}") for i in range(50)])
        finally:
            connection.close()

    thread = threading.Thread(target=apply)
    thread.start()
    assert started.wait(30), "the long apply never started"
    t0 = time.monotonic()
    result = action()
    waited = time.monotonic() - t0
    thread.join(60)
    return held["run"], result, waited


def post_and_complete(api):
    run = open_run(api)
    posted = post_batch(api, run["id"], json_body(1, [product("A"), product("B")]))
    completed = api.post(f"{API}/runs/{run['id']}/complete/", {}, format="json")
    return run["id"], posted.status_code, completed.status_code


def check(api, other_api, other_customer, monkeypatch, hold):
    from integrations.models import Integration

    other = Integration.objects.get(customer=other_customer, slug="products")
    long_run, (run_id, posted, completed), waited = during_a_long_apply(
        monkeypatch, other, hold, lambda: post_and_complete(api)
    )
    assert (posted, completed) == (202, 202)
    assert waited >= hold / 2  # they did wait for the apply's lock
    assert long_run.status == SyncRun.Status.SUCCEEDED and long_run.created == 50
    assert SyncRun.objects.get(pk=run_id).status == SyncRun.Status.SUCCEEDED
    assert Product.objects.filter(sku__in=["A", "B"]).count() == 2


def test_batch_post_and_complete_wait_for_a_long_apply(integration, api, other_api, other_customer, monkeypatch):
    check(api, other_api, other_customer, monkeypatch, hold=2)


@pytest.mark.slow
def test_startproject_sqlite_waits_longer_than_five_seconds(
    startproject_options, integration, api, other_api, other_customer, monkeypatch
):
    # Python's sqlite3 gives up after 5 s by default: an apply holding the lock 6 s made this a 500
    check(api, other_api, other_customer, monkeypatch, hold=6)
