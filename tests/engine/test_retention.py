"""Retention (SPEC section 6): raw payloads after INTEGRATIONS_RAW_RETENTION_DAYS, finished runs with
everything they own after INTEGRATIONS_RUN_RETENTION_DAYS; in bounded chunks; --dry-run deletes nothing."""

import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import services, tasks
from integrations.models import (
    RecordError,
    RunNotification,
    SyncBatch,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
)
from integrations.retention import purge_sync_data
from tests.support import product, sync

S = SyncRun.Status


def bad(sku):
    return {"sku": sku, "name": "", "price": "1", "currency": "EUR"}


def days_ago(days, fn, *args, **kwargs):
    with time_machine.travel(timezone.now() - timedelta(days=days), tick=True):
        return fn(*args, **kwargs)


def payloads(run):
    return list(SyncBatch.objects.filter(run=run).values_list("payload", flat=True))


def stored(names):
    return [default_storage.exists(n) for n in names]


@pytest.fixture
def reporting(integration, settings):
    """An integration whose failures leave errors, notifications and webhook deliveries behind."""
    settings.INTEGRATIONS_STAFF_EMAILS = ["staff@ourco.example"]
    integration.max_error_rate = 0.5
    integration.webhook_url = "http://127.0.0.1:9/unreachable"  # nothing listens: a failed attempt
    integration.save()
    return integration


def test_old_goes_young_stays(reporting):
    ancient = days_ago(200, sync, reporting, [product("A"), bad("B")])
    middle = days_ago(60, sync, reporting, [product("A"), bad("C")], [product("D")])
    young = days_ago(5, sync, reporting, [product("A"), bad("E")])
    for run in (ancient, middle, young):
        assert run.status == S.PARTIAL
        assert RecordError.objects.filter(run=run).count() == 1
        assert WebhookDelivery.objects.filter(run=run).count() == 1
    assert RunNotification.objects.filter(run=ancient).exists()
    ancient_files, middle_files, young_files = payloads(ancient), payloads(middle), payloads(young)
    assert all(stored(ancient_files + middle_files + young_files))

    report = purge_sync_data()

    assert report["runs_deleted"] == 1 and report["errors_deleted"] == 1 and report["batches_deleted"] == 1
    assert report["deliveries_deleted"] == 1 and report["attempts_deleted"] == 1
    assert report["notifications_deleted"] == 1
    assert report["payloads_expired"] == 3 and report["files_deleted"] == 3
    assert not SyncRun.objects.filter(pk=ancient.pk).exists()
    assert not RecordError.objects.filter(run_id=ancient.pk).exists()
    assert not WebhookDelivery.objects.filter(run_id=ancient.pk).exists()
    assert not WebhookAttempt.objects.filter(delivery__run_id=ancient.pk).exists()
    assert stored(ancient_files) == [False]

    # 60 days: the raw payloads are gone, the run and its errors stay
    assert SyncRun.objects.filter(pk=middle.pk).exists()
    assert RecordError.objects.filter(run=middle).count() == 1
    assert stored(middle_files) == [False, False]
    assert all(b.payload_purged_at for b in SyncBatch.objects.filter(run=middle))
    # 5 days: everything stays
    assert stored(young_files) == [True]
    assert SyncBatch.objects.get(run=young).payload_purged_at is None
    assert WebhookDelivery.objects.filter(run=young).exists()

    # again: nothing left to do
    again = purge_sync_data()
    assert sum(v for k, v in again.items() if k.endswith(("_deleted", "_expired"))) == 0


def test_dry_run_deletes_nothing_and_counts_what_a_purge_does(reporting):
    old = days_ago(200, sync, reporting, [product("A"), bad("B")])
    days_ago(40, sync, reporting, [product("A")])
    files = list(SyncBatch.objects.values_list("payload", flat=True))

    dry = purge_sync_data(dry_run=True)
    assert dry["dry_run"] is True
    assert (dry["runs_deleted"], dry["errors_deleted"], dry["payloads_expired"], dry["files_deleted"]) == (1, 1, 2, 2)
    assert SyncRun.objects.filter(pk=old.pk).exists()
    assert RecordError.objects.count() == 1
    assert all(stored(files))
    assert not SyncBatch.objects.filter(payload_purged_at__isnull=False).exists()

    done = purge_sync_data()
    counts = [k for k, v in done.items() if k.endswith(("_deleted", "_expired"))]
    assert {k: done[k] for k in counts} == {k: dry[k] for k in counts}


def test_unfinished_runs_are_never_touched(integration):
    held = days_ago(
        300, lambda: (sync(integration, [product(f"P{i}") for i in range(20)]), sync(integration, [product("P1")]))[1]
    )
    assert held.status == S.NEEDS_REVIEW
    long_ago = timezone.now() - timedelta(days=300)
    processing = SyncRun.objects.create(
        integration=integration, mode="full", status=S.PROCESSING, completed_at=long_ago, started_at=long_ago
    )
    SyncRun.objects.filter(pk=processing.pk).update(created_at=long_ago)
    SyncBatch.objects.create(run=processing, seq=1, payload="integrations/x/never-there", sha256="0")

    purge_sync_data()
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {held.pk, processing.pk}
    assert SyncBatch.objects.get(run=held).payload_purged_at is None
    assert all(stored(payloads(held)))
    assert SyncBatch.objects.get(run=processing).payload_purged_at is None
    # the held run can still be approved after the purge
    services.run_review(run=held, approve=True)
    held.refresh_from_db()
    assert held.status == S.SUCCEEDED and held.deleted == 19


def test_a_file_shared_with_a_younger_retry_stays_until_the_retry_expires(integration):
    first = days_ago(40, sync, integration, [bad("A")])
    assert first.status == S.FAILED
    retry = services.run_retry(run=first)
    retry.refresh_from_db()
    assert retry.status == S.FAILED
    [shared] = payloads(first)
    assert payloads(retry) == [shared]

    report = purge_sync_data()
    assert report["payloads_expired"] == 1 and report["files_deleted"] == 0
    assert SyncBatch.objects.get(run=first).payload_purged_at is not None
    assert SyncBatch.objects.get(run=retry).payload_purged_at is None
    assert stored([shared]) == [True]  # the retry still needs it: it can be retried again
    services.run_retry(run=retry)

    with time_machine.travel(timezone.now() + timedelta(days=31), tick=True):
        report = purge_sync_data()
    assert report["files_deleted"] == 1
    assert stored([shared]) == [False]


def test_an_uploaded_file_expires(integration):
    def upload():
        run = services.upload_create(
            integration=integration,
            stream=io.BytesIO(b'[{"sku": "A", "name": "A", "price": 1, "currency": "EUR"}]'),
            filename="products.json",
        )
        run.refresh_from_db()
        return run

    old, young = days_ago(45, upload), upload()
    assert old.status == young.status == S.SUCCEEDED
    old_file, young_file = old.upload_name, young.upload_name
    assert all(stored([old_file, young_file]))
    report = purge_sync_data()
    assert report["uploads_expired"] == 1
    assert stored([old_file, young_file]) == [False, True]
    old.refresh_from_db()
    assert old.upload_name == "" and old.upload_filename == "products.json"
    assert all(b.payload_purged_at for b in old.batches.all())
    young.refresh_from_db()
    assert young.upload_name == young_file


def test_deletes_in_bounded_chunks(integration, settings):
    settings.INTEGRATIONS_PURGE_CHUNK = 2
    integration.max_error_rate = 1.0
    integration.save()
    runs = [days_ago(190 + i, sync, integration, [bad(f"K{i}-{j}") for j in range(5)]) for i in range(5)]
    keep = sync(integration, [bad("Y")])
    assert RecordError.objects.count() == 26
    with CaptureQueriesContext(connection) as queries:
        report = purge_sync_data()
    assert report["runs_deleted"] == 5 and report["errors_deleted"] == 25 and report["batches_deleted"] == 5
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {keep.pk}
    assert RecordError.objects.count() == 1
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("DELETE")]
    assert deletes
    for sql in deletes:
        for in_list in re.findall(r"\bIN \(([^()]*)\)", sql):
            assert len(in_list.split(",")) <= 2, sql
    table = SyncRun._meta.db_table
    run_deletes = [sql for sql in deletes if re.match(rf'\s*DELETE FROM "?{table}"?\s', sql, re.I)]
    assert len(run_deletes) >= len(runs) / 2, run_deletes  # the 5 old runs went 2 at a time


def test_the_command_prints_what_it_did_and_would_do(reporting):
    days_ago(200, sync, reporting, [product("A"), bad("B")])
    out = io.StringIO()
    call_command("purge_sync_data", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Dry run: nothing was deleted." in text
    assert "runs to delete: 1" in text and "record errors to delete: 1" in text
    assert "raw batch payloads to expire: 1" in text
    assert SyncRun.objects.count() == 1

    out = io.StringIO()
    call_command("purge_sync_data", stdout=out)
    text = out.getvalue()
    assert "Dry run" not in text
    assert "runs deleted: 1" in text and "record errors deleted: 1" in text and "files deleted from storage: 1" in text
    assert SyncRun.objects.count() == 0


def test_retention_days_come_from_the_settings(integration, settings):
    settings.INTEGRATIONS_RUN_RETENTION_DAYS = 7
    settings.INTEGRATIONS_RAW_RETENTION_DAYS = 30  # longer than the run's: a deleted run's files go too
    run = days_ago(10, sync, integration, [product("A")])
    files = payloads(run)
    report = tasks.purge()  # the daily schedule's task
    assert report["runs_deleted"] == 1 and stored(files) == [False]


def test_the_daily_schedule_exists_once(transactional_db):
    from django_q.models import Schedule

    from integrations.schedules import ensure_schedules

    ensure_schedules()
    ensure_schedules()
    purge = Schedule.objects.filter(func="integrations.tasks.purge")
    assert purge.count() == 1 and purge.get().schedule_type == Schedule.DAILY
    deliver = Schedule.objects.filter(func="integrations.tasks.deliver_due_webhooks")
    assert deliver.count() == 1 and deliver.get().minutes == 1
