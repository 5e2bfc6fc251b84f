"""Runs over the API: create (idempotency), list, detail, complete, cancel, errors (JSON and CSV)."""

import csv
import io
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun
from tests.support import product
from tests.support.api import (
    API,
    error_of,
    json_body,
    open_run,
    post_batch,
    records,
    sync_over_api,
)

RUN_FIELDS = {
    "id",
    "integration",
    "mode",
    "dry_run",
    "status",
    "source",
    "created_at",
    "completed_at",
    "started_at",
    "finished_at",
    "counts",
    "progress",
    "message",
    "errors_url",
    "changes_url",
}


def create(api, body=None, key=None, slug="products"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(f"{API}/integrations/{slug}/runs/", body, format="json", **headers)


# --- create ------------------------------------------------------------------------------------


def test_create_run_201_with_the_run_object(api, integration):
    response = create(api, {"mode": "incremental", "dry_run": True})
    assert response.status_code == 201
    run = response.json()
    assert set(run) == RUN_FIELDS
    assert run["integration"] == "products" and run["mode"] == "incremental" and run["dry_run"] is True
    assert run["status"] == "receiving" and run["source"] == "api"
    assert run["counts"] == {"received": 0, "created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    assert run["progress"] == {"batches_total": 0, "batches_done": 0}
    assert run["errors_url"] == f"http://testserver/api/v1/runs/{run['id']}/errors/"
    db = SyncRun.objects.get(pk=run["id"])
    assert (db.mode, db.dry_run, db.integration_id) == ("incremental", True, integration.pk)


def test_create_run_with_empty_body_uses_the_integrations_mode(api, integration):
    response = api.post(f"{API}/integrations/products/runs/")
    assert response.status_code == 201
    assert response.json()["mode"] == "full" and response.json()["dry_run"] is False


@pytest.mark.parametrize(
    "body, field",
    [
        ({"mode": "snapshot"}, "mode"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"dry_run": 1}, "dry_run"),
        ({"mode": "full", "modee": "full"}, "modee"),
        ({"batches": 3}, "batches"),
    ],
)
def test_create_run_refuses_bad_bodies_400(api, integration, body, field):
    response = create(api, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid" and field in error["details"]
    assert not SyncRun.objects.exists()


def test_create_run_refuses_a_list_body(api, integration):
    response = create(api, [1, 2])
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_idempotency_key_same_body_200_same_run(api, integration):
    first = create(api, {"mode": "full"}, key="nightly-2026-12-01")
    assert first.status_code == 201
    again = create(api, {"mode": "full"}, key="nightly-2026-12-01")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert SyncRun.objects.count() == 1
    # a new key is a new run
    other = create(api, {"mode": "full"}, key="nightly-2026-12-02")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_idempotency_key_other_body_422(api, integration):
    first = create(api, {"mode": "full"}, key="k-1")
    response = create(api, {"mode": "incremental"}, key="k-1")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "idempotency_mismatch" and error["details"] == {"run": first.json()["id"]}
    assert SyncRun.objects.count() == 1


def test_idempotency_key_expires_after_24_hours(api, integration):
    first = create(api, {}, key="k-old").json()
    SyncRun.objects.filter(pk=first["id"]).update(created_at=timezone.now() - timedelta(hours=25))
    again = create(api, {}, key="k-old")
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_idempotency_keys_are_scoped_to_the_customer(api, integration, other_api):
    mine = create(api, {}, key="shared-key")
    theirs = create(other_api, {"mode": "incremental"}, key="shared-key")
    assert mine.status_code == 201 and theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_idempotency_key_too_long_400(api, integration):
    response = create(api, {}, key="k" * 201)
    assert response.status_code == 400
    assert "Idempotency-Key" in error_of(response)["details"]


def test_inactive_integration_is_404(api, integration):
    integration.is_active = False
    integration.save()
    assert create(api, {}).status_code == 404
    assert api.get(f"{API}/integrations/").json()["count"] == 0


# --- lists -------------------------------------------------------------------------------------


def test_integrations_list_is_a_page(api, integration, customer):
    services.integration_create(customer=customer, slug="prices", target="catalog.product", mode="incremental")
    body = api.get(f"{API}/integrations/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    assert [i["slug"] for i in body["results"]] == ["prices", "products"]  # newest first
    assert body["results"][0]["default_mode"] == "incremental"
    assert body["results"][1]["runs_url"] == "http://testserver/api/v1/integrations/products/runs/"


def test_runs_list_newest_first_and_paginated(api, integration):
    ids = [open_run(api)["id"] for _ in range(3)]
    body = api.get(f"{API}/integrations/products/runs/?page_size=2").json()
    assert body["count"] == 3
    assert [r["id"] for r in body["results"]] == ids[::-1][:2]
    assert body["next"].endswith("page=2&page_size=2") and body["previous"] is None
    page2 = api.get(body["next"]).json()
    assert [r["id"] for r in page2["results"]] == [ids[0]]
    assert api.get(f"{API}/integrations/products/runs/?page=9").status_code == 404
    bad = api.get(f"{API}/integrations/products/runs/?page=zero")
    assert bad.status_code == 400 and "page" in error_of(bad)["details"]


# --- complete, detail, cancel -------------------------------------------------------------------


def test_complete_202_queued_then_200_and_the_data_is_applied(api, integration):
    run = open_run(api)
    assert post_batch(api, run["id"], json_body(1, records(5))).status_code == 202
    response = api.post(f"{API}/runs/{run['id']}/complete/", {"batches": 1, "records": 5}, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["completed_at"]
    again = api.post(f"{API}/runs/{run['id']}/complete/", format="json")
    assert again.status_code == 200
    detail = api.get(f"{API}/runs/{run['id']}/")
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "succeeded"
    assert body["counts"]["received"] == 5 and body["counts"]["created"] == 5
    assert body["progress"] == {"batches_total": 1, "batches_done": 1}
    assert Product.objects.filter(customer=integration.customer).count() == 5


def test_complete_integrity_mismatch_409_and_the_run_stays_open(api, integration):
    run = open_run(api)
    post_batch(api, run["id"], json_body(1, records(5)))
    response = api.post(f"{API}/runs/{run['id']}/complete/", {"batches": 2, "records": 9}, format="json")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["details"] == {"batches": {"expected": 2, "received": 1}, "records": {"expected": 9, "received": 5}}
    assert SyncRun.objects.get(pk=run["id"]).status == "receiving"


@pytest.mark.parametrize("body", [{"batches": -1}, {"records": "many"}, {"batch": 1}])
def test_complete_refuses_bad_bodies_400(api, integration, body):
    run = open_run(api)
    response = api.post(f"{API}/runs/{run['id']}/complete/", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"
    assert SyncRun.objects.get(pk=run["id"]).status == "receiving"


# --- long-poll: GET runs/{id}/?wait=N --------------------------------------------------------------


def _later(seconds, action):
    """Run `action` in another thread (its own database connection) after `seconds`."""
    import threading

    from django.db import connection

    def body():
        time.sleep(seconds)
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_wait_answers_as_soon_as_the_status_changes(api, integration):
    run = open_run(api)
    thread = _later(1.0, lambda: services.run_cancel(run=SyncRun.objects.get(pk=run["id"]), reason="test"))
    started = time.monotonic()
    response = api.get(f"{API}/runs/{run['id']}/?wait=10")
    took = time.monotonic() - started
    thread.join()
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert 0.9 <= took < 3


def test_wait_answers_when_the_progress_changes(api, integration):
    run = open_run(api)
    thread = _later(0.5, lambda: SyncRun.objects.filter(pk=run["id"]).update(batches_total=3))
    started = time.monotonic()
    response = api.get(f"{API}/runs/{run['id']}/?wait=10")
    thread.join()
    assert time.monotonic() - started < 3
    assert response.json()["status"] == "receiving" and response.json()["progress"]["batches_total"] == 3


def test_wait_answers_after_n_seconds_when_nothing_changes(api, integration):
    run = open_run(api)
    started = time.monotonic()
    response = api.get(f"{API}/runs/{run['id']}/?wait=1.5")
    took = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "receiving"
    assert 1.4 <= took < 3


def test_wait_on_a_settled_run_answers_at_once(api, integration):
    run = open_run(api)
    api.post(f"{API}/runs/{run['id']}/cancel/")
    started = time.monotonic()
    response = api.get(f"{API}/runs/{run['id']}/?wait=30")
    assert response.json()["status"] == "cancelled" and time.monotonic() - started < 1


def test_a_waiting_request_holds_no_transaction_open(api, integration):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("pg_stat_activity is PostgreSQL's")
    run = open_run(api)
    answers = []
    thread = _later(0, lambda: answers.append(api.get(f"{API}/runs/{run['id']}/?wait=2")))
    time.sleep(1.0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        )
        idle_in_transaction = cursor.fetchone()[0]
    thread.join()
    assert answers[0].status_code == 200 and idle_in_transaction == 0


@pytest.mark.parametrize("wait", ["0", "-1", "61", "soon", ""])
def test_wait_out_of_range_400(api, integration, wait):
    run = open_run(api)
    response = api.get(f"{API}/runs/{run['id']}/?wait={wait}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid" and "wait" in error["details"]


def test_wait_on_another_customers_run_404_at_once(api, other_api, integration):
    run = open_run(api)
    started = time.monotonic()
    assert other_api.get(f"{API}/runs/{run['id']}/?wait=5").status_code == 404
    assert time.monotonic() - started < 1


def test_complete_a_cancelled_run_409(api, integration):
    run = open_run(api)
    assert api.post(f"{API}/runs/{run['id']}/cancel/").status_code == 200
    response = api.post(f"{API}/runs/{run['id']}/complete/", format="json")
    assert response.status_code == 409
    assert error_of(response)["details"] == {"status": "cancelled"}


def test_cancel_200_then_409_and_nothing_is_applied(api, integration):
    run = open_run(api)
    post_batch(api, run["id"], json_body(1, records(2)))
    response = api.post(f"{API}/runs/{run['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"]
    again = api.post(f"{API}/runs/{run['id']}/cancel/")
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"
    assert not Product.objects.exists()
    # a batch after the cancel: 409 too
    late = post_batch(api, run["id"], json_body(2, records(1)))
    assert late.status_code == 409


def test_cancel_after_apply_409(api, integration):
    run = sync_over_api(api, [records(2)])
    assert run["status"] == "succeeded"
    response = api.post(f"{API}/runs/{run['id']}/cancel/")
    assert response.status_code == 409
    assert error_of(response)["details"] == {"status": "succeeded"}
    assert Product.objects.count() == 2


# --- errors ------------------------------------------------------------------------------------


@pytest.fixture
def failed_run(api, integration):
    integration.max_error_rate = 1.0
    integration.save()
    batch = [
        product("OK-1"),
        product("BAD-1", price="-5"),
        {"name": "no key", "price": "1.00", "currency": "EUR"},
        product("BAD-2", colour="red"),
        product("=cmd|' /C calc'!A0", name="@SUM(1+1)", quantity=-3, attributes={"size": "L", "tags": ["a"]}),
        product("OK-1"),
    ]
    run = sync_over_api(api, [batch, ["not an object"]])
    assert run["status"] == "partial", run
    return run


def test_errors_paginated_with_every_field(api, failed_run):
    body = api.get(f"{API}/runs/{failed_run['id']}/errors/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 6
    first = body["results"][0]
    assert first == {
        "seq": 1,
        "index": 1,
        "key": "BAD-1",
        "code": "invalid",
        "message": first["message"],
        "fields": {"price": ["Must be at least 0."]},
        "record": product("BAD-1", price="-5"),
    }
    by_position = {(e["seq"], e["index"]): e for e in body["results"]}
    assert by_position[(1, 2)]["code"] == "missing_key" and by_position[(1, 2)]["key"] is None
    assert by_position[(1, 3)]["code"] == "unknown_field" and "colour" in by_position[(1, 3)]["fields"]
    assert by_position[(1, 5)]["code"] == "duplicate_key"
    assert by_position[(2, 0)]["code"] == "parse_error" and by_position[(2, 0)]["record"] == "not an object"
    assert [(e["seq"], e["index"]) for e in body["results"]] == sorted(by_position)


def test_errors_filtered_by_code(api, failed_run):
    body = api.get(f"{API}/runs/{failed_run['id']}/errors/?code=missing_key").json()
    assert body["count"] == 1 and body["results"][0]["code"] == "missing_key"
    bad = api.get(f"{API}/runs/{failed_run['id']}/errors/?code=nope")
    assert bad.status_code == 400 and "code" in error_of(bad)["details"]
    assert api.get(f"{API}/runs/{failed_run['id']}/errors/?format=xml").status_code == 400


def test_errors_csv_columns_and_injection_guard(api, failed_run):
    response = api.get(f"{API}/runs/{failed_run['id']}/errors/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    # the target's fields in schema order, the unknown ones the records carried, then the error columns
    assert header == [
        "sku",
        "name",
        "price",
        "currency",
        "quantity",
        "active",
        "attributes",
        "colour",
        "error_code",
        "error_message",
        "error_fields",
        "error_seq",
        "error_index",
        "error_record",
    ]
    data = [dict(zip(header, row)) for row in rows[1:]]
    assert len(data) == 6
    assert data[0]["sku"] == "BAD-1" and data[0]["price"] == "-5" and data[0]["error_code"] == "invalid"
    assert data[0]["error_fields"] == "price: Must be at least 0." and data[0]["error_index"] == "1"
    assert data[1]["sku"] == "" and data[1]["name"] == "no key" and data[1]["error_code"] == "missing_key"
    assert data[2]["colour"] == "red"
    injected = next(r for r in data if r["name"].startswith("'@"))
    assert injected["sku"] == "'=cmd|' /C calc'!A0"
    assert injected["name"] == "'@SUM(1+1)"
    assert injected["quantity"] == "-3"  # a number is never a formula
    assert injected["attributes"] == '{"size": "L", "tags": ["a"]}'
    assert data[-1]["error_code"] == "parse_error" and data[-1]["error_record"] == "not an object"


def test_errors_csv_without_errors_has_only_the_header(api, integration):
    run = sync_over_api(api, [records(2)])
    response = api.get(f"{API}/runs/{run['id']}/errors/?format=csv")
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "sku,name,price,currency,quantity,active,attributes,error_code,error_message,error_fields,error_seq,error_index"
    ]


def test_errors_csv_can_be_filtered(api, failed_run):
    response = api.get(f"{API}/runs/{failed_run['id']}/errors/?format=csv&code=unknown_field")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 and rows[1][rows[0].index("error_code")] == "unknown_field"
