"""Undo (SPEC 13), staff only: which run can be undone, its preview, and the undo run itself.

The undo of a run is a run of its integration (source `undo`, `undoes` naming the run), queued
like any other: it waits its turn and blocks the runs behind it (rule 6), and its apply
(ingest/undo.py) happens in one transaction under the same locks as any apply. Only the latest
applied run of an integration that is not undone yet can be undone; undoing again walks further
back. The deletion guard does not hold an undo: staff asked for it, after the preview.
"""

from django.db import transaction
from django.utils import timezone

from ..exceptions import Conflict
from ..ingest import staging
from ..ingest import undo as undo_apply
from ..models import Integration, Mode, SyncRun
from ..queue import Task, enqueue
from ..targets import get_target

Status = SyncRun.Status


def undo_candidate(integration: Integration) -> SyncRun | None:
    """The integration's latest applied run not undone yet (nor being undone)."""
    pending_or_done = (
        SyncRun.objects.filter(source=SyncRun.Source.UNDO, undoes__isnull=False)
        .exclude(status__in=SyncRun.NOT_APPLIED_STATES)
        .values("undoes")
    )
    return (
        SyncRun.objects.filter(integration=integration, dry_run=False, status__in=SyncRun.APPLIED_STATES)
        .exclude(source=SyncRun.Source.UNDO)
        .exclude(pk__in=pending_or_done)
        .order_by("-finished_at", "-created_at")
        .first()
    )


def undo_refusal(run: SyncRun) -> str | None:
    """Why `run` cannot be undone now, or None."""
    if run.dry_run:
        return "a dry run applied nothing: there is nothing to undo"
    if run.source == SyncRun.Source.UNDO:
        return "an undo run cannot be undone; undo the run before it instead"
    if run.status not in SyncRun.APPLIED_STATES:
        return f"the run is {run.status}: it applied nothing, there is nothing to undo"
    if run.changes_purged_at is not None:
        return "the run's journal of changes is gone (retention): it can no longer be undone"
    latest = undo_candidate(run.integration)
    if latest is None or latest.pk != run.pk:
        if run.undone_by.exclude(status__in=SyncRun.NOT_APPLIED_STATES).exists():
            return "the run is undone already (or its undo is on its way)"
        return (
            f"only the latest applied run of the integration can be undone: run {latest.pk}"
            if latest
            else "the integration has no applied run to undo"
        )
    return None


def undo_preview(run: SyncRun) -> dict:
    """What the undo would do to the table as it is now: {created, updated, deleted, conflicts,
    conflict_keys} (created: deleted rows restored; deleted: created rows removed)."""
    target = get_target(run.integration.target)
    return undo_apply.plan(run, target, run.integration.customer_id)


def run_undo(*, run: SyncRun, user: str = "") -> SyncRun:
    """Queue the undo of `run` (staff): a new run, applied in its turn."""
    with transaction.atomic():
        Integration.objects.select_for_update(of=("self",)).get(pk=run.integration_id)
        run = SyncRun.objects.select_related("integration__customer").get(pk=run.pk)
        why = undo_refusal(run)
        if why:
            raise Conflict(why, details={"run": str(run.pk)})
        staging.ensure_table(get_target(run.integration.target))
        undo = SyncRun.objects.create(
            integration=run.integration,
            mode=Mode.INCREMENTAL,
            source=SyncRun.Source.UNDO,
            undoes=run,
            status=Status.QUEUED,
            completed_at=timezone.now(),
            reviewed_by=user[:150],
        )
        enqueue(Task.KICK_INTEGRATION, run.integration_id)
    return undo
