"""Retention (SPEC section 6): raw payloads expire after INTEGRATIONS_RAW_RETENTION_DAYS, finished
runs with everything they own after INTEGRATIONS_RUN_RETENTION_DAYS, a run's change journal (SPEC 13)
after INTEGRATIONS_CHANGES_RETENTION_DAYS (the run then says it can no longer be undone).

Run by the daily django-q2 schedule `integrations.purge` and by `manage.py purge_sync_data`.
Every DELETE touches at most INTEGRATIONS_PURGE_CHUNK rows and commits on its own, so a purge of
millions of record errors never holds a long lock or builds one huge transaction. Only finished
runs (succeeded, partial, failed, cancelled) are touched: a run processing, queued or held for
review keeps its payloads and its rows whatever its age.

A payload file can be shared: a retried run's batches (and upload) point at the files of the run
they retry. A file is deleted only when no batch (or upload) that is still kept points at it.
"""

import logging
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from . import storage
from .conf import conf
from .models import (
    RecordError,
    RunChange,
    RunNotification,
    SyncBatch,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
)

log = logging.getLogger("integrations")


def purge_sync_data(*, dry_run: bool = False, now=None) -> dict:
    """Delete what has expired (or, with dry_run, count what would be). Returns the counts."""
    now = now or timezone.now()
    run_cutoff = now - timedelta(days=conf.RUN_RETENTION_DAYS)
    # a run that is deleted loses its payloads too, even if raw retention is the longer one
    raw_cutoff = max(now - timedelta(days=conf.RAW_RETENTION_DAYS), run_cutoff)
    changes_cutoff = max(now - timedelta(days=conf.CHANGES_RETENTION_DAYS), run_cutoff)
    chunk = max(1, conf.PURGE_CHUNK)
    report = {
        "dry_run": dry_run,
        "raw_before": raw_cutoff.isoformat(),
        "runs_before": run_cutoff.isoformat(),
        "changes_before": changes_cutoff.isoformat(),
        "payloads_expired": 0,  # batches whose raw payload expired (marked payload_purged_at)
        "uploads_expired": 0,  # runs whose uploaded file expired
        "files_deleted": 0,  # files removed from storage (shared files once)
        "runs_deleted": 0,
        "batches_deleted": 0,
        "errors_deleted": 0,
        "journals_expired": 0,  # runs whose change journal expired (marked changes_purged_at)
        "changes_deleted": 0,
        "staging_rows_deleted": 0,  # staged records of ended runs that their cleanup_run missed
        "deliveries_deleted": 0,
        "attempts_deleted": 0,
        "notifications_deleted": 0,
    }
    gone: set[str] = set()  # files deleted (or to be), each counted once
    _purge_payloads(raw_cutoff, run_cutoff, chunk, dry_run, report, gone)
    _purge_uploads(raw_cutoff, chunk, dry_run, report, gone)
    _purge_changes(changes_cutoff, chunk, dry_run, report)
    _purge_runs(run_cutoff, chunk, dry_run, report)
    _purge_staging(chunk, dry_run, report)
    if not dry_run and any(v for k, v in report.items() if isinstance(v, int) and not isinstance(v, bool)):
        log.info("purge_sync_data: %s", report)
    return report


def _expired_batches(raw_cutoff, run_cutoff):
    """Batches whose payload expired, or that belong to a run about to be deleted."""
    return SyncBatch.objects.filter(
        Q(created_at__lt=raw_cutoff) | Q(run__created_at__lt=run_cutoff),
        payload_purged_at__isnull=True,
        run__status__in=SyncRun.END_STATES,
    )


def _expired_uploads(raw_cutoff):
    return SyncRun.objects.filter(created_at__lt=raw_cutoff, status__in=SyncRun.END_STATES).exclude(upload_name="")


def _purge_payloads(raw_cutoff, run_cutoff, chunk: int, dry_run: bool, report: dict, gone: set) -> None:
    expired = _expired_batches(raw_cutoff, run_cutoff)
    last_pk = 0
    while True:
        rows = list(expired.filter(pk__gt=last_pk).order_by("pk").values_list("pk", "payload")[:chunk])
        if not rows:
            return
        last_pk = rows[-1][0]
        pks = [pk for pk, _ in rows]
        names = {name for _, name in rows if name}
        # a file that a batch or an upload still kept points at stays
        kept = set(
            SyncBatch.objects.filter(payload__in=names, payload_purged_at__isnull=True)
            .exclude(pk__in=expired.filter(payload__in=names).values("pk"))
            .values_list("payload", flat=True)
        )
        kept |= _uploads_kept(names, raw_cutoff)
        doomed = names - kept - gone
        gone |= doomed
        report["payloads_expired"] += len(pks)
        report["files_deleted"] += len(doomed)
        if dry_run:
            continue
        for name in sorted(doomed):
            storage.delete_payload(name)
        SyncBatch.objects.filter(pk__in=pks).update(payload_purged_at=timezone.now())


def _purge_uploads(raw_cutoff, chunk: int, dry_run: bool, report: dict, gone: set) -> None:
    expired = _expired_uploads(raw_cutoff)
    last_pk = None
    while True:
        page = expired.filter(pk__gt=last_pk) if last_pk is not None else expired
        rows = list(page.order_by("pk").values_list("pk", "upload_name")[:chunk])
        if not rows:
            return
        last_pk = rows[-1][0]
        names = {name for _, name in rows}
        kept = _uploads_kept(names, raw_cutoff)
        kept |= set(
            SyncBatch.objects.filter(payload__in=names, payload_purged_at__isnull=True).values_list(
                "payload", flat=True
            )
        )
        doomed = names - kept - gone
        gone |= doomed
        report["uploads_expired"] += len(rows)
        report["files_deleted"] += len(doomed)
        if dry_run:
            continue
        for name in sorted(doomed):
            storage.delete_payload(name)
        SyncRun.objects.filter(pk__in=[pk for pk, _ in rows]).update(upload_name="")


def _uploads_kept(names: set, raw_cutoff) -> set:
    """Upload files among `names` that a run which is not expiring still needs."""
    return set(
        SyncRun.objects.filter(upload_name__in=names)
        .exclude(Q(created_at__lt=raw_cutoff) & Q(status__in=SyncRun.END_STATES))
        .values_list("upload_name", flat=True)
    )


def _purge_changes(cutoff, chunk: int, dry_run: bool, report: dict) -> None:
    """The change journals of finished runs created before `cutoff`, a chunk of runs at a time;
    each run is marked, so the undo can say why it no longer can."""
    expired = SyncRun.objects.filter(
        created_at__lt=cutoff, status__in=SyncRun.END_STATES, changes_purged_at__isnull=True
    )
    if dry_run:
        report["journals_expired"] = expired.count()
        report["changes_deleted"] = RunChange.objects.filter(run__in=expired.values("pk")).count()
        return
    while True:
        run_ids = list(expired.order_by("created_at", "pk").values_list("pk", flat=True)[:chunk])
        if not run_ids:
            return
        report["changes_deleted"] += _delete_chunked(RunChange.objects.filter(run_id__in=run_ids), chunk)
        report["journals_expired"] += SyncRun.objects.filter(pk__in=run_ids).update(changes_purged_at=timezone.now())


def _purge_runs(run_cutoff, chunk: int, dry_run: bool, report: dict) -> None:
    expired = SyncRun.objects.filter(created_at__lt=run_cutoff, status__in=SyncRun.END_STATES)
    if dry_run:
        ids = expired.values("pk")
        report["runs_deleted"] = expired.count()
        report["batches_deleted"] = SyncBatch.objects.filter(run__in=ids).count()
        report["errors_deleted"] = RecordError.objects.filter(run__in=ids).count()
        report["deliveries_deleted"] = WebhookDelivery.objects.filter(run__in=ids).count()
        report["attempts_deleted"] = WebhookAttempt.objects.filter(delivery__run__in=ids).count()
        report["notifications_deleted"] = RunNotification.objects.filter(run__in=ids).count()
        return
    while True:
        run_ids = list(expired.order_by("created_at", "pk").values_list("pk", flat=True)[:chunk])
        if not run_ids:
            return
        delivery_ids = WebhookDelivery.objects.filter(run_id__in=run_ids).values("pk")
        report["attempts_deleted"] += _delete_chunked(WebhookAttempt.objects.filter(delivery__in=delivery_ids), chunk)
        report["deliveries_deleted"] += _delete_chunked(WebhookDelivery.objects.filter(run_id__in=run_ids), chunk)
        report["errors_deleted"] += _delete_chunked(RecordError.objects.filter(run_id__in=run_ids), chunk)
        report["notifications_deleted"] += _delete_chunked(RunNotification.objects.filter(run_id__in=run_ids), chunk)
        report["batches_deleted"] += _delete_chunked(SyncBatch.objects.filter(run_id__in=run_ids), chunk)
        report["runs_deleted"] += _delete_chunked(SyncRun.objects.filter(pk__in=run_ids), chunk)


def _purge_staging(chunk: int, dry_run: bool, report: dict) -> None:
    """Staged records of every run that has ended, whatever its age or end (applied, failed,
    cancelled, rejected, superseded), and of runs no longer there. cleanup_run removes them when a
    run ends; this catches what it missed (a lost task, runs that ended before every end scheduled
    it). Only runs not yet ended keep theirs: they may still be applied."""
    from .ingest import staging
    from .targets import get_target, target_names

    tables = set(connection.introspection.table_names())
    open_runs = SyncRun.objects.exclude(status__in=SyncRun.END_STATES).values("pk")
    for name in target_names():
        model = staging.stage_model(get_target(name))
        if model._meta.db_table not in tables:
            continue
        leftover = model.objects.exclude(run_id__in=open_runs)
        if dry_run:
            report["staging_rows_deleted"] += leftover.count()
        else:
            report["staging_rows_deleted"] += _delete_chunked(leftover, chunk)


def _delete_chunked(queryset, chunk: int) -> int:
    """Delete the rows of `queryset`, at most `chunk` per statement; returns how many."""
    model = queryset.model
    total = 0
    while True:
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:chunk])
        if not pks:
            return total
        # the children are gone already, so Django's collector deletes by primary key at once
        # (and sets a retried run's retry_of to null)
        total += model.objects.filter(pk__in=pks).delete()[1].get(model._meta.label, 0)
