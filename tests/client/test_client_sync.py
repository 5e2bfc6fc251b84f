"""The client against a live server of the project: real HTTP on loopback, tasks inline."""

import threading
import time

import pytest
from integrations_client import (
    AuthError,
    Client,
    ConflictError,
    NotFoundError,
    Unparseable,
    ValidationError,
    WaitTimeout,
)

from catalog.models import Product
from integrations import tasks
from integrations.models import SyncBatch, SyncRun
from tests.support.client import FAST_RETRY, products


@pytest.mark.slow  # ~2 min on SQLite with tasks inline (the engine's SQLite upsert); ~20 s on PostgreSQL
def test_a_generator_of_120000_records_is_synced_in_3_batches(api):
    seen = []
    started = time.monotonic()
    report = api.client.sync("products", products(120_000), progress=lambda answer, sent: seen.append((answer, sent)))
    elapsed = time.monotonic() - started
    assert report.status == "succeeded", report.summary()
    assert report.counts == {
        "received": 120_000,
        "created": 120_000,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 0,
    }
    assert [(a["seq"], a["received"], sent) for a, sent in seen] == [
        (1, 50_000, 50_000),
        (2, 50_000, 100_000),
        (3, 20_000, 120_000),
    ]
    run = SyncRun.objects.get(pk=report.run_id)
    assert run.source == "api" and sorted(SyncBatch.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2, 3]
    assert Product.objects.filter(customer=api.customer).count() == 120_000
    assert list(report.errors()) == []
    print(f"120,000 records synced in {elapsed:.1f} s")


def test_json_transport_and_a_second_sync_reports_unchanged_and_updated(api):
    client = api.new_client(format="json")
    first = client.sync("products", products(300), batch_size=100)
    assert first.status == "succeeded" and first.counts["created"] == 300
    changed = ({**r, "name": "Renamed"} if i < 10 else r for i, r in enumerate(products(300)))
    second = client.sync("products", changed, batch_size=100)
    assert second.counts == {"received": 300, "created": 0, "updated": 10, "unchanged": 290, "deleted": 0, "failed": 0}
    assert Product.objects.get(customer=api.customer, sku="SKU-0000000").name == "Renamed"


def test_partial_run_reports_its_errors(api):
    api.integration.max_error_rate = 0.5
    api.integration.save()
    records = [
        *products(3),
        {"sku": "BAD-1", "name": "Bad", "price": "-1", "currency": "EUR"},
        {"name": "no key", "price": "1", "currency": "EUR"},
    ]
    report = api.client.sync("products", iter(records), mode="incremental")
    assert report.status == "partial" and report.exit_status == 3
    assert report.counts["created"] == 3 and report.counts["failed"] == 2
    errors = list(report.errors())
    assert [(e["seq"], e["index"], e["key"], e["code"]) for e in errors] == [
        (1, 3, "BAD-1", "invalid"),
        (1, 4, None, "missing_key"),
    ]
    assert "price" in errors[0]["fields"]
    assert [e["key"] for e in report.errors(code="invalid")] == ["BAD-1"]


def test_dry_run_counts_and_applies_nothing(api):
    report = api.client.sync("products", products(250), batch_size=100, dry_run=True)
    assert report.status == "succeeded" and report.dry_run
    assert report.counts["created"] == 250
    assert not Product.objects.filter(customer=api.customer).exists()


def test_wait_polls_until_the_end_and_times_out_clearly(api, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # no worker: the run stays queued
    report = api.client.sync("products", products(10), wait=False)
    assert report.status == "queued" and not report.settled
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        api.client.wait(report.run_id, timeout=1.0, interval=0.1)
    assert 1.0 <= time.monotonic() - started < 5
    assert caught.value.run_id == report.run_id and caught.value.last["status"] == "queued"
    assert report.run_id in str(caught.value) and "queued" in str(caught.value)

    settings.INTEGRATIONS_RUN_TASKS_INLINE = True  # now a "worker" takes it
    polled = []
    tasks.kick_integration(api.integration.pk)
    final = api.client.wait(report.run_id, on_poll=lambda run: polled.append(run["status"]))
    assert final.status == "succeeded" and final.counts["created"] == 10 and polled[-1] == "succeeded"


def test_needs_review_ends_the_wait(api):
    assert api.client.sync("products", products(20)).status == "succeeded"
    report = api.client.sync("products", products(5))  # would delete 15 of 20 rows
    assert report.status == "needs_review" and report.settled and report.exit_status == 4
    assert Product.objects.filter(customer=api.customer).count() == 20


def test_4xx_raise_typed_errors_with_the_servers_message(api):
    with pytest.raises(NotFoundError) as caught:
        api.client.sync("no-such-integration", products(1))
    assert caught.value.status == 404 and caught.value.code and caught.value.message
    assert caught.value.message in str(caught.value)

    with pytest.raises(AuthError) as caught:
        Client(api.url, "bad.key", retry=FAST_RETRY).list_integrations()
    assert caught.value.status == 401 and caught.value.message

    with pytest.raises(ValidationError) as caught:
        api.client.create_run("products", mode="sometimes")
    assert caught.value.status == 400 and "mode" in str(caught.value.details)

    run = api.client.create_run("products")
    api.client.post_batch(run["id"], products(2), seq=1)
    assert api.client.post_batch(run["id"], products(2), seq=1)["received"] == 2  # same bytes again: fine
    with pytest.raises(ConflictError) as caught:
        api.client.post_batch(run["id"], products(3), seq=1)
    assert caught.value.status == 409
    assert caught.value.message == "batch 1 was already received with other content"
    assert caught.value.details == {"seq": 1}


def test_a_failing_sync_cancels_its_run(api):
    def records():
        yield from products(5)
        yield "not a record"

    with pytest.raises(TypeError, match="not a dict"):
        api.client.sync("products", records())
    run = SyncRun.objects.get(integration=api.integration)
    assert run.status == "cancelled"


def test_lower_level_calls(api):
    assert [i["slug"] for i in api.client.list_integrations()] == ["products"]
    run = api.client.create_run("products", mode="incremental", idempotency_key="k-1")
    assert api.client.create_run("products", mode="incremental", idempotency_key="k-1")["id"] == run["id"]
    assert api.client.post_batch(run["id"], products(3), seq=1, deletes=["GONE"]) == {
        "seq": 1,
        "received": 3,
        "status": "received",
    }
    with pytest.raises(ConflictError, match="integrity|did not receive"):
        api.client.complete(run["id"], batches=2, records=3)
    queued = api.client.complete(run["id"], batches=1, records=3)
    assert queued["id"] == run["id"]
    assert api.client.get_run(run["id"])["status"] == "succeeded"
    assert [r["id"] for r in api.client.list_runs("products")] == [run["id"]]

    other = api.client.create_run("products")
    assert api.client.cancel(other["id"])["status"] == "cancelled"
    assert api.client.cancel(other["id"])["status"] == "cancelled"  # again: the same, not an error
    with pytest.raises(ConflictError) as caught:
        api.client.cancel(run["id"])  # applied already
    assert caught.value.details == {"status": "succeeded"}


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
def test_an_unparseable_line_becomes_one_parse_error_and_the_rest_is_synced(api, fmt):
    api.integration.max_error_rate = 0.5
    api.integration.save()
    records = [*products(3), Unparseable('{"sku": "X-1", oops', "line 4 is not valid JSON"), *products(2, start=3)]
    report = api.new_client(format=fmt).sync("products", iter(records), batch_size=2)
    assert report.status == "partial"
    assert report.counts["received"] == 6 and report.counts["created"] == 5 and report.counts["failed"] == 1
    [error] = list(report.errors())
    assert error["code"] == "parse_error" and error["key"] is None and error["record"] == '{"sku": "X-1", oops'
    assert Product.objects.filter(customer=api.customer).count() == 5


def test_wait_long_polls_and_sees_the_end_at_once(api, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # no worker yet: the run stays queued
    report = api.client.sync("products", products(10), wait=False)
    ended = []

    def worker():
        time.sleep(2.5)
        settings.INTEGRATIONS_RUN_TASKS_INLINE = True
        try:
            tasks.kick_integration(api.integration.pk)  # the run is processed here, to its end
            ended.append(time.monotonic())
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    seen = []
    final = api.client.wait(report.run_id, on_poll=lambda run: seen.append(run["status"]))
    returned = time.monotonic()
    thread.join()
    assert final.status == "succeeded"
    # a back-off poll would notice it up to seconds later; the long-poll within a fraction of one
    assert returned - ended[0] < 0.8
    assert len(seen) <= 6  # long-polls, not a poll every half second


def test_errors_csv_returns_bytes_or_writes_a_file(api, tmp_path):
    api.integration.max_error_rate = 0.5
    api.integration.save()
    report = api.client.sync(
        "products", iter([*products(3), {"sku": "BAD", "name": "x", "price": "1.234", "currency": "EUR"}])
    )
    assert report.status == "partial"
    data = api.client.errors_csv(report.run_id)
    assert isinstance(data, bytes) and b"BAD" in data and b"error_code" in data.splitlines()[0]
    path = tmp_path / "errors.csv"
    assert api.client.errors_csv(report.run_id, path) is None
    assert path.read_bytes() == data
    assert api.client.errors_csv(report.run_id, code="missing_key").count(b"\n") == 1  # the header only
