"""Processing a queued run (SPEC section 3): order, validation in parallel, one apply, recovery.

receiving --batch_receive--> validate_batch (early, at most N of a customer at a time: early.py)
queued --kick_integration--> processing --process_run--> [split_upload] --> validate_batch x (what is left)
      --(last batch)--> apply_run --> succeeded | partial | failed | needs_review

Every step is idempotent: it checks the state it expects under a row lock and does nothing
otherwise, so a task delivered twice, or re-queued by the sweeper after a worker died, applies
nothing twice. A batch is validated once, early or not (its `validated_at`, set with its staged rows
in one transaction); the apply waits for every batch, for `complete` and for its turn (rule 6),
checks the staging rows are all there, and commits with the run's end state in one transaction.
Whatever ends a run drops its staged rows (cleanup_run), early ones included. Each change of a
run's status is made by transitions.py.
"""

import logging
import traceback
import uuid
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from .. import conditions, metrics, storage
from ..conf import conf
from ..exceptions import IntegrationsError
from ..ingest import decode, files, staging, transport, undo
from ..ingest.apply import lock_owner_rows, plan_and_apply, refresh_statistics, set_work_mem
from ..ingest.outcome import prepare_batch
from ..ingest.validate import Validator
from ..models import Integration, RecordError, RunChange, SyncBatch, SyncRun
from ..queue import Task, enqueue
from ..targets import AdapterContext, get_adapter, get_target
from . import early, transitions

log = logging.getLogger("integrations")
Status = SyncRun.Status


def integration_kick(*, integration_id) -> SyncRun | None:
    """Start the integration's next queued run unless a run ahead of it is processing or held."""
    with transaction.atomic():
        # `of`: the integration's row alone (its default ordering joins the customer, whose row
        # FOR UPDATE would lock too, making the customer's other integrations wait)
        Integration.objects.select_for_update(of=("self",)).filter(pk=integration_id).first()
        runs = SyncRun.objects.filter(integration_id=integration_id, dry_run=False)
        if runs.filter(status__in=SyncRun.BLOCKING_STATES).exists():
            return None
        head = runs.filter(status=Status.QUEUED).order_by("completed_at", "created_at").select_for_update().first()
        if head is None:
            return None
        transitions.start(head)
    return head


def dry_run_start(*, run_id) -> None:
    """Dry runs take no part in the order: they start at once."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(pk=run_id, status=Status.QUEUED).first()
        if run is not None:
            transitions.start(run)


def run_process(*, run_id) -> None:
    """Hand out the work of a processing run: split an upload, validate what is not validated,
    or apply when everything is. Safe to call any number of times."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None or run.status != Status.PROCESSING:
        return
    if run.upload_name and run.batches_total == 0 and not run.batches.exists():
        enqueue(Task.SPLIT_UPLOAD, run.pk)
        return
    # what is left to validate; a batch a worker is validating early is handed out again too (an
    # early task the broker lost must not hold the run up): it waits a while for that worker first
    # (early.wait_for_claim), so that the batch is not validated twice side by side. Claimed batches
    # go last: a free worker starts on a batch nobody validates, not by waiting for that worker
    pending = list(
        SyncBatch.objects.filter(run=run, validated_at__isnull=True)
        .order_by(F("validating_since").asc(nulls_first=True), "seq")
        .values_list("pk", flat=True)
    )
    if not pending:
        enqueue(Task.APPLY_RUN, run.pk, follow=True)
        return
    for batch_id in pending:
        enqueue(Task.VALIDATE_BATCH, batch_id)


def upload_split(*, run_id) -> None:
    """Split an uploaded file into stored batches, streaming it; then validate them."""
    run = SyncRun.objects.filter(pk=run_id, status=Status.PROCESSING).first()
    if run is None or run.batches.exists():
        return
    created: list[SyncBatch] = []
    try:
        with storage.open_payload(run.upload_name) as stream:
            for seq, (payload, content_type, count) in enumerate(
                files.iter_file_chunks(stream, run.upload_format, conf.UPLOAD_BATCH_RECORDS), start=1
            ):
                name = storage.save_bytes(storage.payload_name(run.pk, f"upload-{seq:06d}", "part"), payload)
                created.append(
                    SyncBatch(
                        run=run,
                        seq=seq,
                        payload=name,
                        content_type=content_type,
                        sha256="",
                        size=len(payload),
                        received=count,
                    )
                )
    except IntegrationsError as exc:
        for b in created:
            storage.delete_payload(b.payload)
        _fail_unreadable_file(run.pk, exc.message)
        return
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
        enqueue(Task.PROCESS_RUN if created else Task.APPLY_RUN, run.pk)


def _fail_unreadable_file(run_id, reason: str) -> SyncRun | None:
    """An upload that is no file of records (not a JSON array, a CSV header naming a column twice,
    bytes that are no JSON): the run fails with one parse_error for the whole file (seq 0, index 0),
    counted as one received record that failed, so the counts still add up (rule 7)."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(pk=run_id, status=Status.PROCESSING).first()
        if run is None:
            return None
        if not RecordError.objects.filter(run=run).exists():
            RecordError.objects.create(
                run=run, seq=0, index=0, key=None, code=RecordError.Code.PARSE_ERROR, message=reason[:2000]
            )
        SyncRun.objects.filter(pk=run.pk).update(received=1)
        return run_fail(run_id=run.pk, message=f"the uploaded file could not be read: {reason}")


def batch_validate(*, batch_id, early_task: bool = False) -> None:
    """Decode, map and validate one stored batch; stage its valid records, keep its errors. A batch
    of a run not yet started (receiving, or queued for its turn) is validated early (early.py;
    `early_task`: this is the task its claim handed out)."""
    batch = SyncBatch.objects.select_related("run__integration__customer").filter(pk=batch_id).first()
    if batch is None or batch.validated_at is not None or not batch.run.is_active:
        return
    if early_task:
        early.begin(batch_id=batch.pk)
    elif early.wait_for_claim(batch):  # the early task finished it meanwhile
        return
    claimed = batch.validating_since is not None
    early_now = batch.run.status in SyncRun.EARLY_STATES
    try:
        _validate(batch, early_now=early_now)
    except Exception as exc:
        if not early_now:
            raise
        # the run is not started: whatever went wrong is met again after `complete`, where it
        # fails the run (or is retried) as for any batch
        log.warning("run %s batch %s: early validation gave up: %r", batch.run_id, batch.seq, exc)
        early.give_up(batch_id=batch.pk)
    finally:
        if claimed:  # its place goes to the customer's next batch waiting for one
            early.validate_early(customer_id=batch.run.integration.customer_id)


def _validate(batch: SyncBatch, *, early_now: bool) -> None:
    run, integration = batch.run, batch.run.integration
    target = get_target(integration.target)
    context = AdapterContext(customer=integration.customer, integration=integration, run=run)
    try:
        validator = Validator(
            target,
            integration.field_map,
            get_adapter(integration.adapter) if integration.adapter else None,
            context=context,
        )
        raw = storage.read_payload(batch.payload)
        body = transport.decompress(raw, batch.content_encoding, conf.MAX_BATCH_BYTES)
        result = validator.validate(decode.decode_batch(body, batch.content_type))
    except Exception as exc:
        if early_now or not isinstance(exc, (IntegrationsError, OSError)):
            raise
        message = getattr(exc, "message", str(exc))
        run_fail(run_id=run.pk, message=f"batch {batch.seq} could not be read: {message}")
        return
    staging.ensure_table(target)
    staged = prepare_batch(run_id=run.pk, seq=batch.seq, result=result, target=target)  # outside the lock
    with transaction.atomic():
        # the rows first, the locks last: a batch POST, `complete` or a cancel of this run (each
        # locks the run's row) waits for the few statements below, not for the rows' COPY
        written = staged.write()
        locked = SyncBatch.objects.select_for_update().get(pk=batch.pk)
        # the run's row locked too: a cancel that committed before this is seen here (and these
        # rows go with the rollback); one after it waits for the commit (its cleanup finds them)
        run_now = SyncRun.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True).first()
        if locked.validated_at is not None or run_now not in SyncRun.ACTIVE_STATES:
            transaction.set_rollback(True)  # staged by another worker meanwhile, or the run ended
            return
        locked.staged, locked.key_span = written, staged.key_span
        locked.validated_at = timezone.now()
        locked.valid, locked.invalid = len(result.valid), len(result.problems)
        locked.save(update_fields=["validated_at", "valid", "invalid", "staged", "key_span"])
        SyncRun.objects.filter(pk=run.pk).update(batches_done=F("batches_done") + 1, heartbeat_at=timezone.now())
        if run_now == Status.PROCESSING:  # else the run's start finds every batch validated
            transaction.on_commit(lambda: _apply_when_validated(run.pk))
    log.info(
        "run %s batch %s validated%s: %d valid, %d invalid",
        run.pk,
        batch.seq,
        " early" if early_now else "",
        len(result.valid),
        len(result.problems),
    )


def _apply_when_validated(run_id) -> None:
    if not SyncBatch.objects.filter(run_id=run_id, validated_at__isnull=True).exists():
        enqueue(Task.APPLY_RUN, run_id, follow=True)  # in this worker: the run's last step, at once


def run_apply(*, run_id) -> SyncRun | None:
    """The one transaction of a run: decide and write, and record the end state with it."""
    integration_target = SyncRun.objects.filter(pk=run_id).values_list("integration__target", flat=True).first()
    if integration_target is None:
        return None
    target = get_target(integration_target)
    staging.ensure_table(target)
    refresh_statistics(target)  # outside the transaction: its lock would last the whole apply
    with transaction.atomic():
        # the run's row only (`of`): a join's rows, the customer's above all, are not locked with it
        run = (
            SyncRun.objects.select_for_update(of=("self",))
            .select_related("integration__customer")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != Status.PROCESSING:
            return run
        if SyncBatch.objects.filter(run=run, validated_at__isnull=True).exists():
            return run  # not every batch is validated yet: the last validation calls us again
        if transitions.cancel_inactive(run):
            return run
        if not run.dry_run:
            # at most one run of an integration applies at a time (rule 6)
            Integration.objects.select_for_update(of=("self",)).get(pk=run.integration_id)
            # and one run of the customer into this target (rule 4), whichever its integration
            lock_owner_rows(target, run.integration.customer_id)
        if not _staging_complete(run, target):
            transitions.restage(run, target)
            return run
        set_work_mem()  # this transaction's hash joins in memory
        # an undo plays the undone run's journal backwards (SPEC 13); the guard does not hold it
        outcome = undo.apply(run, target) if run.source == SyncRun.Source.UNDO else plan_and_apply(run, target)
        transitions.end(run, outcome)  # with the run's counts, in this transaction
    return run


def _staging_complete(run: SyncRun, target) -> bool:
    """Every row every batch staged is in the staging table (an UNLOGGED table loses its rows in
    PostgreSQL's crash recovery: then the run is validated again, never applied short)."""
    expected = SyncBatch.objects.filter(run=run).aggregate(n=Sum("staged"))["n"] or 0
    return staging.staged(target, run.pk, None).count() == expected


def run_fail(*, run_id, message: str, detail: str = "") -> SyncRun | None:
    """A fatal error: the run ends `failed` with nothing applied. `detail` is for staff only."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not transitions.can_become(run, Status.FAILED):
            return run
        transitions.fail(run, message, detail=detail)
    return run


def run_cleanup(*, run_id) -> None:
    """Drop the staging rows of a run that has ended (its errors stay), and the journal of a run
    cancelled without applying (a held run rejected or superseded journaled what approval would
    have changed: nothing changed, SPEC 13)."""
    run = SyncRun.objects.filter(pk=run_id).select_related("integration").first()
    if run is not None and run.status not in SyncRun.END_STATES:
        return
    if run is not None and run.status == SyncRun.Status.CANCELLED:
        RunChange.objects.filter(run=run).delete()
    target = None
    if run is not None:
        try:
            target = get_target(run.integration.target)
        except LookupError:
            log.warning(
                "run %s: its target %r is no longer registered; no staging rows to drop", run_id, run.integration.target
            )
    if target is not None:
        staging.discard(target, run_id)


def is_transient(exc: BaseException) -> bool:
    """May the same task succeed when it runs again? Lost connections, lock and statement
    timeouts, serialization failures and deadlocks (all OperationalError), network and storage
    timeouts. Everything else (a programming error, a bad target, data the database refuses)
    fails the same way every time."""
    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError)):
        return True
    try:  # raised by psycopg itself outside Django's cursor wrapper (COPY)
        import psycopg
    except ImportError:
        pass
    else:
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return True
    try:  # S3 storage
        from botocore.exceptions import ClientError, HTTPClientError
    except ImportError:
        return False
    if isinstance(exc, HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in (
            "SlowDown",
            "RequestTimeout",
            "Throttling",
        )
    return False


def internal_error_message(reference: str) -> str:
    """What the customer reads about an error inside a task: never SQL, a traceback or an exception's
    text (they may hold other customers' values, table names, paths)."""
    return f"internal error while processing this run; our team was alerted (reference {reference})"


def record_task_error(*, run_id, exc: BaseException, task: str = "") -> None:
    """A task of the run raised. Staff get the detail (the log and `error_detail`, with a reference),
    the customer a generic `message` at once. A transient error leaves the run `processing` for the
    sweeper to hand out again (rule 8) until MAX_ATTEMPTS; any other error fails it now: it would
    fail the same way on every attempt."""
    reference = uuid.uuid4().hex[:8]
    transient = is_transient(exc)
    log.error(
        "run %s: task %s raised (reference %s, %s)",
        run_id,
        task or "?",
        reference,
        "transient: will be retried" if transient else "the run fails",
        exc_info=exc,
    )
    detail = (
        f"reference {reference} at {timezone.now().isoformat()} in task {task or '?'} "
        f"({'transient, retried' if transient else 'not retryable'}):\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )[:20_000]
    headline = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
    try:
        if transient:
            SyncRun.objects.filter(pk=run_id, status=Status.PROCESSING).update(
                last_error=headline,
                error_detail=detail,
                message=f"a temporary internal error interrupted processing; it is retried automatically "
                f"(reference {reference})",
            )
        else:
            SyncRun.objects.filter(pk=run_id).update(last_error=headline)
            run_fail(run_id=run_id, message=internal_error_message(reference), detail=detail)
    except Exception:  # the database itself is gone: the sweeper finds the run when it is back
        log.exception("run %s: could not record the error of reference %s", run_id, reference)


def _give_up(run: SyncRun) -> None:
    """The sweeper's last attempt is used: the run fails. The last task error (if any) stays for
    staff; the customer reads the generic message."""
    if not run.last_error:
        run_fail(run_id=run.pk, message=f"gave up after {run.attempts + 1} attempts: no worker finished it")
        return
    reference = uuid.uuid4().hex[:8]
    log.error(
        "run %s: gave up after %d attempts (reference %s); last error: %s",
        run.pk,
        run.attempts + 1,
        reference,
        run.last_error,
    )
    detail = f"reference {reference}: gave up after {run.attempts + 1} attempts; the last error was\n{run.error_detail or run.last_error}"
    run_fail(run_id=run.pk, message=internal_error_message(reference), detail=detail[:20_000])


def sweep() -> dict:
    """The periodic sweeper (rules 8 and 9): re-queue runs whose worker died, cancel runs left
    receiving too long, alert staff about stuck and behind-schedule runs, and start integrations'
    next runs."""
    now = timezone.now()
    done = {"cancelled": 0, "requeued": 0, "failed": 0, "stuck": 0, "behind": 0, "kicked": 0}
    stale = now - timedelta(seconds=conf.RECEIVING_TIMEOUT)
    for run in SyncRun.objects.filter(status=Status.RECEIVING, created_at__lt=stale):
        with transaction.atomic():
            locked = SyncRun.objects.select_for_update().filter(pk=run.pk, status=Status.RECEIVING).first()
            if locked:
                transitions.cancel(
                    locked, f"never completed: cancelled after {conf.RECEIVING_TIMEOUT} seconds receiving"
                )
                done["cancelled"] += 1
    quiet = now - timedelta(seconds=conf.REQUEUE_AFTER)
    for run in SyncRun.objects.filter(status=Status.PROCESSING, heartbeat_at__lt=quiet):
        if run.attempts + 1 >= conf.MAX_ATTEMPTS:
            _give_up(run)
            done["failed"] += 1
            continue
        SyncRun.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1, heartbeat_at=now)
        enqueue(Task.PROCESS_RUN, run.pk)
        done["requeued"] += 1
    # one task per condition and sweep: many runs stalled at once (a worker outage) make one digest
    stuck = list(conditions.stuck_runs(now).filter(stuck_alerted_at__isnull=True).values_list("pk", flat=True))
    if stuck:
        SyncRun.objects.filter(pk__in=stuck).update(stuck_alerted_at=now)
        enqueue(Task.ALERT_CONDITION, conditions.STUCK, ",".join(map(str, stuck)))
        done["stuck"] += len(stuck)
    for integration_id in (
        SyncRun.objects.filter(status=Status.QUEUED, dry_run=False).values_list("integration_id", flat=True).distinct()
    ):
        if integration_kick(integration_id=integration_id):
            done["kicked"] += 1
    for run_id in SyncRun.objects.filter(status=Status.QUEUED, dry_run=True).values_list("pk", flat=True):
        dry_run_start(run_id=run_id)
    # behind: still queued after the kicks above (a run ahead of it holds the line, or no worker runs)
    if conf.STAFF_EMAILS:  # the alert's RunNotification marks a behind run as alerted
        behind = list(
            conditions.behind_runs(timezone.now())
            .exclude(notifications__event=f"run.{conditions.BEHIND}")
            .values_list("pk", flat=True)
        )
        if behind:
            enqueue(Task.ALERT_CONDITION, conditions.BEHIND, ",".join(map(str, behind)))
            done["behind"] += len(behind)
    if any(done.values()):
        log.info("sweep: %s", done)
        metrics.sweeper_acted(done)
    return done
