"""django-q2 entry points. Each takes ids, calls one service, and does nothing else.

Each runs inside `logcontext.task_scope`: its log lines (and any error sent to Sentry) carry the
task's name and, for a run's task, the run, its integration and its customer (one small query
per task, never per record)."""

from . import logcontext, notify, services, webhooks
from .queue import in_task


def _run_context(run_id) -> dict:
    from .models import SyncRun

    row = (
        (SyncRun.objects.filter(pk=run_id).values_list("integration__slug", "integration__customer__slug").first())
        if run_id
        else None
    )
    return {"run_id": run_id, "integration": row[0], "customer": row[1]} if row else {"run_id": run_id}


def kick_integration(integration_id):
    from .models import Integration

    row = Integration.objects.filter(pk=integration_id).values_list("slug", "customer__slug").first()
    with logcontext.task_scope(task="kick_integration", integration=row and row[0], customer=row and row[1]):
        _reported(services.integration_kick, integration_id=int(integration_id))


def start_dry_run(run_id):
    with logcontext.task_scope(task="start_dry_run", **_run_context(run_id)):
        _reported(services.dry_run_start, run_id=run_id)


def process_run(run_id):
    _guarded("process_run", run_id, services.run_process)


def split_upload(run_id):
    _guarded("split_upload", run_id, services.upload_split)


def validate_batch(batch_id, early_task=False):
    from .models import SyncBatch

    # the batch's run and its names in the one query that was needed for run_id anyway
    run_id, seq, integration, customer = SyncBatch.objects.filter(pk=batch_id).values_list(
        "run_id", "seq", "run__integration__slug", "run__integration__customer__slug"
    ).first() or (None, None, None, None)
    with logcontext.task_scope(
        task="validate_batch", run_id=run_id, batch_seq=seq, integration=integration, customer=customer
    ):
        try:
            _reported(services.batch_validate, batch_id=int(batch_id), early_task=bool(early_task))
        except Exception as exc:
            if not run_id:
                raise
            services.record_task_error(run_id=run_id, exc=exc, task="validate_batch")


def apply_run(run_id):
    _guarded("apply_run", run_id, services.run_apply)


def cleanup_run(run_id):
    with logcontext.task_scope(task="cleanup_run", **_run_context(run_id)):
        _reported(services.run_cleanup, run_id=run_id)


def run_finished(run_id, status):
    with logcontext.task_scope(task="run_finished", **_run_context(run_id)):
        _reported(notify.run_event, run_id=run_id, status=status)


def alert_stuck(run_id):
    with logcontext.task_scope(task="alert_stuck", **_run_context(run_id)):
        _reported(notify.stuck_alert, run_id=run_id)


def alert_condition(condition, run_ids):
    with logcontext.task_scope(task="alert_condition"):
        _reported(notify.condition_alert, condition=condition, run_ids=[r for r in str(run_ids).split(",") if r])


def deliver_webhook(delivery_id):
    with logcontext.task_scope(task="deliver_webhook"):
        _reported(webhooks.attempt, delivery_id=int(delivery_id))


def deliver_due_webhooks():
    with logcontext.task_scope(task="deliver_due_webhooks"):
        return _reported(notify.deliver_due)


def sweep():
    with logcontext.task_scope(task="sweep"):
        return _reported(services.sweep)


def purge():
    from .retention import purge_sync_data

    with logcontext.task_scope(task="purge"):
        return _reported(purge_sync_data, dry_run=False)


def _guarded(task, run_id, service):
    """A task of a run that raises is recorded on the run (failed at once unless transient) and
    not raised again: the log, Sentry and the run page have it, and django-q2 would not retry it
    anyway (ack_failures); the sweeper retries transient ones."""
    with logcontext.task_scope(task=task, **_run_context(run_id)):
        try:
            _reported(service, run_id=run_id)
        except Exception as exc:
            services.record_task_error(run_id=run_id, exc=exc, task=task)


def _reported(service, **kwargs):
    """Every task's call of its service: an error is reported with the task's context; the next
    step of a run's chain that the service enqueues with `follow` runs in this worker (queue.in_task)."""
    try:
        with in_task():
            return service(**kwargs)
    except Exception as exc:
        logcontext.report_exception(exc)  # tagged with the task's context, while it is bound
        raise
