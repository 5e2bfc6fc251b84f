"""The run state machine (SPEC section 3): every change of a SyncRun's status is made here, with its
guard, the fields it sets (saved with `update_fields`, never the whole row) and the tasks that follow.

    receiving --queue--> queued --start--> processing --end--> succeeded | partial | failed | needs_review
    needs_review --approve--> processing
    queued | processing --fail--> failed
    receiving | queued | processing | needs_review --cancel, reject, supersede, deactivated--> cancelled
    (an undo run is created queued: services/undo.py)

Why a module of the service layer: a transition writes the run and puts tasks on the queue, which is
the services' work; runs.py (what the sender and staff do), processing.py (what the workers do) and
the sweeper call it with the run's row locked. What a status *means* (the state sets and the
predicates `can_cancel`, `can_retry`, `is_live`...) is on the model, SyncRun, so that the admin, the
API, notify, metrics and conditions read it without this module.

What follows a change, always after its commit (queue.enqueue):
- queued: a dry run's `start_dry_run`, or the integration's `kick_integration` (rule 6);
- processing: `process_run` (started) or `apply_run` (approved);
- an end or the hold for review: the `run_finished` task (webhook, e-mails), the metrics and the
  `run_finished` signal; an end also `cleanup_run` (its staging rows);
- `kick_integration` (the integration's next queued run may start, rule 6) after the end of a
  non-dry run that held the line (processing, needs_review), or that failed or was cancelled as
  deactivated when its turn came; not after a cancel of a run still receiving or queued (nothing
  waits on it), a hold for review (it still holds the line), nor a superseding (the full run's
  own kick follows).
"""

import logging

from django.db import transaction
from django.utils import timezone

from .. import metrics
from ..exceptions import Conflict, Inactive
from ..ingest import staging
from ..models import Integration, Mode, RecordError, SyncBatch, SyncRun
from ..queue import Task, enqueue
from ..signals import run_finished

log = logging.getLogger("integrations")
Status = SyncRun.Status

# every change of status a run may make; an end state (SyncRun.END_STATES) has none
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.RECEIVING: (Status.QUEUED, Status.CANCELLED),
    Status.QUEUED: (Status.PROCESSING, Status.FAILED, Status.CANCELLED),
    Status.PROCESSING: (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.NEEDS_REVIEW, Status.CANCELLED),
    Status.NEEDS_REVIEW: (Status.PROCESSING, Status.CANCELLED),
}
COUNTS = ("received", "created", "updated", "unchanged", "deleted", "failed")


def can_become(run: SyncRun, status: str) -> bool:
    return status in TRANSITIONS.get(run.status, ())


def _move(run: SyncRun, status: str) -> None:
    """The guard every transition passes: what the services check before, with their own words,
    is checked here once more against the table."""
    if not can_become(run, status):
        raise Conflict(f"run is {run.status} and cannot become {status}", details={"status": run.status})
    run.status = status


def inactive_reason(integration: Integration) -> str:
    """Why the integration takes no data now ("" when it does): it, or its customer, was deactivated.
    Checked when a run is opened, fed, completed and started, so a deactivated feed stops at once."""
    if not integration.customer.is_active:
        return f"customer {integration.customer.slug} was deactivated"
    if not integration.is_active:
        return f"integration {integration} was deactivated"
    return ""


def require_active(integration: Integration) -> None:
    reason = inactive_reason(integration)
    if reason:
        raise Inactive(
            f"{reason}: its runs take no batches and cannot be completed", details={"integration": integration.slug}
        )


def queue(run: SyncRun, *, batches_total: int, received: int, **fields) -> None:
    """receiving -> queued (`complete`, an upload, a retry); `fields`: what else the caller set
    (the integrity check's expectations). A full run supersedes the held runs before it (rule 6)."""
    _move(run, Status.QUEUED)
    run.completed_at = timezone.now()
    run.batches_total = batches_total
    run.received = received
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["status", "completed_at", "batches_total", "received", *fields])
    if run.dry_run:
        enqueue(Task.START_DRY_RUN, run.pk)
        return
    if run.mode == Mode.FULL:
        held = (
            SyncRun.objects.select_for_update()
            .filter(integration_id=run.integration_id, dry_run=False, status=Status.NEEDS_REVIEW)
            .exclude(pk=run.pk)
        )
        for old in held:  # no kick of its own: this run's kick follows
            _finish(old, Status.CANCELLED, f"superseded by run {run.pk}")
    enqueue(Task.KICK_INTEGRATION, run.integration_id)


def start(run: SyncRun) -> bool:
    """queued -> processing: its turn came (rule 6), or at once for a dry run. A run whose
    integration (or customer) was deactivated since is cancelled instead (False)."""
    if cancel_inactive(run):
        return False
    now = timezone.now()
    _move(run, Status.PROCESSING)
    run.started_at = run.started_at or now
    run.heartbeat_at = now
    run.save(update_fields=["status", "started_at", "heartbeat_at"])
    metrics.run_started(run)
    enqueue(Task.PROCESS_RUN, run.pk, follow=True)
    return True


def restage(run: SyncRun, target) -> None:
    """processing, its staged rows lost (an UNLOGGED table after a database crash): its batches are
    validated again from the start; the run stays processing."""
    log.warning("run %s: staged rows missing (database crash?); validating its batches again", run.pk)
    staging.staged(target, run.pk, None).delete()
    RecordError.objects.filter(run=run).delete()
    SyncBatch.objects.filter(run=run).update(
        validated_at=None, validating_since=None, valid=0, invalid=0, staged=0, key_span=None
    )
    run.batches_done = 0
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["batches_done", "heartbeat_at"])
    enqueue(Task.PROCESS_RUN, run.pk)


def end(run: SyncRun, outcome) -> None:
    """processing -> what the apply decided (ingest.apply.Outcome): succeeded, partial, failed or
    needs_review, with its counts, in the apply's transaction. A held run still holds the line."""
    _finish(
        run,
        outcome.status,
        outcome.message,
        kick=outcome.status != Status.NEEDS_REVIEW,
        batches_done=run.batches_total,
        **{name: getattr(outcome, name) for name in COUNTS},
    )


def fail(run: SyncRun, message: str, *, detail: str = "") -> None:
    """queued | processing -> failed with nothing applied: its counts are zero but the failed
    records'. `detail` is for staff only (error_detail)."""
    fields: dict[str, object] = {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": RecordError.objects.filter(run=run).count(),
    }
    if detail:
        fields["error_detail"] = detail
    _finish(run, Status.FAILED, message, kick=True, **fields)


def cancel(run: SyncRun, reason: str) -> None:
    """Any state before an end -> cancelled: by the sender or staff, or a run left receiving too
    long. A run that held its integration's line lets the next one start."""
    if not run.can_cancel:
        raise Conflict(
            f"run is {run.status}; only a run not yet applied can be cancelled", details={"status": run.status}
        )
    _finish(run, Status.CANCELLED, reason, kick=run.status in SyncRun.BLOCKING_STATES)


def cancel_inactive(run: SyncRun) -> bool:
    """A run whose integration (or customer) was deactivated after it was completed is not applied:
    it is cancelled when its turn comes (True), and the next queued run meets the same end."""
    reason = inactive_reason(run.integration)
    if not reason:
        return False
    _finish(run, Status.CANCELLED, f"not applied: {reason}", kick=True)
    return True


def _require_held(run: SyncRun) -> None:
    if run.status != Status.NEEDS_REVIEW:
        raise Conflict(f"run is {run.status}, not held for review", details={"status": run.status})


def approve(run: SyncRun, *, user: str = "") -> None:
    """needs_review -> processing: staff approved a held run; it is applied with the guard waived,
    against the table as it is now."""
    _require_held(run)
    if run.dry_run:
        raise Conflict("a dry run shows what would happen; it cannot be approved", details={"dry_run": True})
    require_active(run.integration)
    now = timezone.now()
    run.reviewed_by, run.reviewed_at = user[:150], now
    run.guard_waived = True
    _move(run, Status.PROCESSING)
    run.heartbeat_at = now
    run.save(update_fields=["status", "reviewed_by", "reviewed_at", "guard_waived", "heartbeat_at"])
    enqueue(Task.APPLY_RUN, run.pk)


def reject(run: SyncRun, *, user: str = "") -> None:
    """needs_review -> cancelled: staff rejected a held run (a held dry run too)."""
    _require_held(run)
    _finish(
        run,
        Status.CANCELLED,
        f"rejected at review{' by ' + user if user else ''}",
        kick=True,
        reviewed_by=user[:150],
        reviewed_at=timezone.now(),
    )


def _finish(run: SyncRun, status: str, message: str, *, kick: bool = False, **fields) -> None:
    """Put a run in an end state (or hold it for review) with the fields that end sets, and
    schedule what follows; `kick`: its integration's next queued run may start (not for a dry run)."""
    _move(run, status)
    for name, value in fields.items():
        setattr(run, name, value)
    run.message = message
    run.finished_at = timezone.now()
    changed = {"status", "message", "finished_at", *fields}
    if status == Status.CANCELLED:
        run.created = run.updated = run.unchanged = run.deleted = 0
        changed |= {"created", "updated", "unchanged", "deleted"}
    run.save(update_fields=sorted(changed))
    log.info("run %s %s: %s", run.pk, status, message)
    metrics.run_finished(run)
    enqueue(Task.RUN_FINISHED, run.pk, status)
    if status in SyncRun.END_STATES:
        # whatever ended it (applied, failed, cancelled, rejected at review, superseded), its staged
        # rows are of no more use; the task is idempotent
        enqueue(Task.CLEANUP_RUN, run.pk)
    transaction.on_commit(lambda: _send_run_finished(run))
    if kick and not run.dry_run:
        enqueue(Task.KICK_INTEGRATION, run.integration_id)


def _send_run_finished(run: SyncRun) -> None:
    for receiver, result in run_finished.send_robust(sender=SyncRun, run=run):
        if isinstance(result, Exception):
            log.error(
                "run_finished receiver %r failed for run %s",
                receiver,
                run.pk,
                exc_info=(type(result), result, result.__traceback__),
            )
