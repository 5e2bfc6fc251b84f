"""Processing a queued run (SPEC section 3): order, validation in parallel, one apply, recovery.

queued --kick_integration--> processing --process_run--> [split_upload] --> validate_batch x N
      --(last batch)--> apply_run --> succeeded | partial | failed | needs_review

Every step is idempotent: it checks the state it expects under a row lock and does nothing
otherwise, so a task delivered twice, or re-queued by the sweeper after a worker died, applies
nothing twice. The apply and the run's end state commit in one transaction.
"""

import logging
import traceback
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from .. import storage
from ..conf import conf
from ..exceptions import IntegrationsError
from ..ingest import decode, staging
from ..ingest.apply import plan_and_apply
from ..ingest.stage import stage_batch
from ..ingest.validate import Validator
from ..models import Integration, RecordError, SyncBatch, SyncRun
from ..queue import enqueue
from ..targets import AdapterContext, get_adapter, get_target
from .runs import _finish

log = logging.getLogger("integrations")
Status = SyncRun.Status


def integration_kick(*, integration_id) -> SyncRun | None:
    """Start the integration's next queued run unless a run ahead of it is processing or held."""
    with transaction.atomic():
        Integration.objects.select_for_update().filter(pk=integration_id).first()
        runs = SyncRun.objects.filter(integration_id=integration_id, dry_run=False)
        if runs.filter(status__in=SyncRun.BLOCKING_STATES).exists():
            return None
        head = runs.filter(status=Status.QUEUED).order_by("completed_at", "created_at").select_for_update().first()
        if head is None:
            return None
        _start(head)
    return head


def dry_run_start(*, run_id) -> None:
    """Dry runs take no part in the order: they start at once."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(pk=run_id, status=Status.QUEUED).first()
        if run is not None:
            _start(run)


def _start(run: SyncRun) -> None:
    now = timezone.now()
    run.status = Status.PROCESSING
    run.started_at = run.started_at or now
    run.heartbeat_at = now
    run.save(update_fields=["status", "started_at", "heartbeat_at"])
    enqueue("integrations.tasks.process_run", run.pk)


def run_process(*, run_id) -> None:
    """Hand out the work of a processing run: split an upload, validate what is not validated,
    or apply when everything is. Safe to call any number of times."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None or run.status != Status.PROCESSING:
        return
    if run.upload_name and run.batches_total == 0 and not run.batches.exists():
        enqueue("integrations.tasks.split_upload", run.pk)
        return
    pending = list(SyncBatch.objects.filter(run=run, validated_at__isnull=True).values_list("pk", flat=True))
    if not pending:
        enqueue("integrations.tasks.apply_run", run.pk)
        return
    with transaction.atomic():
        for batch_id in pending:
            enqueue("integrations.tasks.validate_batch", batch_id)


def upload_split(*, run_id) -> None:
    """Split an uploaded file into stored batches, streaming it; then validate them."""
    run = SyncRun.objects.filter(pk=run_id, status=Status.PROCESSING).first()
    if run is None or run.batches.exists():
        return
    created: list[SyncBatch] = []
    try:
        with storage.open_payload(run.upload_name) as stream:
            for seq, (payload, content_type, count) in enumerate(
                decode.iter_file_chunks(stream, run.upload_format, conf.UPLOAD_BATCH_RECORDS), start=1
            ):
                name = storage.save_bytes(storage.payload_name(run.pk, f"upload-{seq:06d}", "part"), payload)
                created.append(SyncBatch(run=run, seq=seq, payload=name, content_type=content_type, sha256="",
                                         size=len(payload), received=count))
    except IntegrationsError as exc:
        for b in created:
            storage.delete_payload(b.payload)
        return run_fail(run_id=run.pk, message=f"the uploaded file could not be read: {exc.message}")
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != Status.PROCESSING or locked.batches.exists():
            return
        SyncBatch.objects.bulk_create(created)
        locked.batches_total = len(created)
        locked.received = sum(b.received for b in created)
        locked.heartbeat_at = timezone.now()
        locked.save(update_fields=["batches_total", "received", "heartbeat_at"])
        # an empty file has no batch to validate: straight to the apply (an empty snapshot)
        enqueue("integrations.tasks.process_run" if created else "integrations.tasks.apply_run", run.pk)


def batch_validate(*, batch_id) -> None:
    """Decode, map and validate one stored batch; stage its valid records, keep its errors."""
    batch = SyncBatch.objects.select_related("run__integration__customer").filter(pk=batch_id).first()
    if batch is None or batch.validated_at is not None or batch.run.status != Status.PROCESSING:
        return
    run, integration = batch.run, batch.run.integration
    target = get_target(integration.target)
    context = AdapterContext(customer=integration.customer, integration=integration, run=run)
    validator = Validator(target, integration.field_map, get_adapter(integration.adapter) if integration.adapter else None,
                          context=context)
    try:
        raw = storage.read_payload(batch.payload)
        body = decode.decompress(raw, batch.content_encoding, conf.MAX_BATCH_BYTES)
        result = validator.validate(decode.decode_batch(body, batch.content_type))
    except (IntegrationsError, OSError) as exc:
        message = getattr(exc, "message", str(exc))
        return run_fail(run_id=run.pk, message=f"batch {batch.seq} could not be read: {message}")
    staging.ensure_table(target)
    with transaction.atomic():
        locked = SyncBatch.objects.select_for_update().get(pk=batch.pk)
        run_now = SyncRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if locked.validated_at is not None or run_now != Status.PROCESSING:
            return
        locked.staged = stage_batch(run_id=run.pk, seq=batch.seq, result=result, target=target)
        locked.validated_at = timezone.now()
        locked.valid, locked.invalid = len(result.valid), len(result.problems)
        locked.save(update_fields=["validated_at", "valid", "invalid", "staged"])
        SyncRun.objects.filter(pk=run.pk).update(batches_done=F("batches_done") + 1, heartbeat_at=timezone.now())
        transaction.on_commit(lambda: _apply_when_validated(run.pk))


def _apply_when_validated(run_id) -> None:
    if not SyncBatch.objects.filter(run_id=run_id, validated_at__isnull=True).exists():
        with transaction.atomic():
            enqueue("integrations.tasks.apply_run", run_id)


def run_apply(*, run_id) -> SyncRun | None:
    """The one transaction of a run: decide and write, and record the end state with it."""
    integration_target = (SyncRun.objects.filter(pk=run_id).values_list("integration__target", flat=True).first())
    if integration_target is None:
        return None
    target = get_target(integration_target)
    staging.ensure_table(target)
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().select_related("integration__customer").filter(pk=run_id).first()
        if run is None or run.status != Status.PROCESSING:
            return run
        if SyncBatch.objects.filter(run=run, validated_at__isnull=True).exists():
            return run  # not every batch is validated yet: the last validation calls us again
        if not run.dry_run:
            # at most one run of an integration applies at a time (rule 6)
            Integration.objects.select_for_update().get(pk=run.integration_id)
        if not _staging_complete(run, target):
            _restage(run, target)
            return run
        outcome = plan_and_apply(run, target)
        for name in ("received", "created", "updated", "unchanged", "deleted", "failed"):
            setattr(run, name, getattr(outcome, name))
        run.batches_done = run.batches_total
        _finish(run, outcome.status, outcome.message)
        if outcome.status != Status.NEEDS_REVIEW:
            enqueue("integrations.tasks.cleanup_run", run.pk)
        if not run.dry_run and outcome.status != Status.NEEDS_REVIEW:
            enqueue("integrations.tasks.kick_integration", run.integration_id)
    return run


def _staging_complete(run: SyncRun, target) -> bool:
    """Every row every batch staged is in the staging table (an UNLOGGED table loses its rows in
    PostgreSQL's crash recovery: then the run is validated again, never applied short)."""
    expected = SyncBatch.objects.filter(run=run).aggregate(n=Sum("staged"))["n"] or 0
    return staging.staged(target, run.pk, None).count() == expected


def _restage(run: SyncRun, target) -> None:
    log.warning("run %s: staged rows missing (database crash?); validating its batches again", run.pk)
    staging.staged(target, run.pk, None).delete()
    RecordError.objects.filter(run=run).delete()
    SyncBatch.objects.filter(run=run).update(validated_at=None, valid=0, invalid=0, staged=0)
    run.batches_done = 0
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["batches_done", "heartbeat_at"])
    enqueue("integrations.tasks.process_run", run.pk)


def run_fail(*, run_id, message: str) -> SyncRun | None:
    """A fatal error: the run ends `failed` with nothing applied."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status not in (Status.QUEUED, Status.PROCESSING):
            return run
        run.created = run.updated = run.unchanged = run.deleted = 0
        run.failed = RecordError.objects.filter(run=run).count()
        _finish(run, Status.FAILED, message)
        enqueue("integrations.tasks.cleanup_run", run.pk)
        if not run.dry_run:
            enqueue("integrations.tasks.kick_integration", run.integration_id)
    return run


def run_cleanup(*, run_id) -> None:
    """Drop the staging rows of a run that has ended (its errors stay)."""
    run = SyncRun.objects.filter(pk=run_id).select_related("integration").first()
    if run is not None and run.status not in SyncRun.END_STATES:
        return
    if run is not None:
        target = get_target(run.integration.target)
        staging.ensure_table(target)
        staging.staged(target, run_id, None).delete()


def record_task_error(*, run_id, exc: BaseException) -> None:
    SyncRun.objects.filter(pk=run_id).update(
        last_error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
    )


def sweep() -> dict:
    """The periodic sweeper (rules 8 and 9): re-queue runs whose worker died, cancel runs left
    receiving too long, alert staff about stuck runs, and start integrations' next runs."""
    now = timezone.now()
    done = {"cancelled": 0, "requeued": 0, "failed": 0, "stuck": 0, "kicked": 0}
    stale = now - timedelta(seconds=conf.RECEIVING_TIMEOUT)
    for run in SyncRun.objects.filter(status=Status.RECEIVING, created_at__lt=stale):
        with transaction.atomic():
            locked = SyncRun.objects.select_for_update().filter(pk=run.pk, status=Status.RECEIVING).first()
            if locked:
                _finish(locked, Status.CANCELLED,
                        f"never completed: cancelled after {conf.RECEIVING_TIMEOUT} seconds receiving")
                done["cancelled"] += 1
    quiet = now - timedelta(seconds=conf.REQUEUE_AFTER)
    for run in SyncRun.objects.filter(status=Status.PROCESSING, heartbeat_at__lt=quiet):
        if run.attempts + 1 >= conf.MAX_ATTEMPTS:
            run_fail(run_id=run.pk, message=f"gave up after {run.attempts + 1} attempts: {run.last_error or 'no worker finished it'}")
            done["failed"] += 1
            continue
        SyncRun.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1, heartbeat_at=now)
        with transaction.atomic():
            enqueue("integrations.tasks.process_run", run.pk)
        done["requeued"] += 1
    stuck_since = now - timedelta(seconds=conf.STUCK_AFTER)
    for run in SyncRun.objects.filter(status=Status.PROCESSING, started_at__lt=stuck_since, stuck_alerted_at__isnull=True):
        SyncRun.objects.filter(pk=run.pk).update(stuck_alerted_at=now)
        with transaction.atomic():
            enqueue("integrations.tasks.alert_stuck", run.pk)
        done["stuck"] += 1
    for integration_id in (SyncRun.objects.filter(status=Status.QUEUED, dry_run=False)
                           .values_list("integration_id", flat=True).distinct()):
        if integration_kick(integration_id=integration_id):
            done["kicked"] += 1
    for run_id in SyncRun.objects.filter(status=Status.QUEUED, dry_run=True).values_list("pk", flat=True):
        dry_run_start(run_id=run_id)
    if any(done.values()):
        log.info("sweep: %s", done)
    return done
