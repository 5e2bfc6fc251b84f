"""django-q2 entry points. Each takes ids, calls one service, and does nothing else."""

from . import notify, services, webhooks


def kick_integration(integration_id):
    services.integration_kick(integration_id=int(integration_id))


def start_dry_run(run_id):
    services.dry_run_start(run_id=run_id)


def process_run(run_id):
    _guarded(run_id, services.run_process)


def split_upload(run_id):
    _guarded(run_id, services.upload_split)


def validate_batch(batch_id):
    from .models import SyncBatch

    run_id = SyncBatch.objects.filter(pk=batch_id).values_list("run_id", flat=True).first()
    try:
        services.batch_validate(batch_id=int(batch_id))
    except Exception as exc:
        if not run_id:
            raise
        services.record_task_error(run_id=run_id, exc=exc, task="validate_batch")


def apply_run(run_id):
    _guarded(run_id, services.run_apply)


def cleanup_run(run_id):
    services.run_cleanup(run_id=run_id)


def run_finished(run_id, status):
    notify.run_event(run_id=run_id, status=status)


def alert_stuck(run_id):
    notify.stuck_alert(run_id=run_id)


def deliver_webhook(delivery_id):
    webhooks.attempt(delivery_id=int(delivery_id))


def deliver_due_webhooks():
    return notify.deliver_due()


def sweep():
    return services.sweep()


def purge():
    from .retention import purge_sync_data

    return purge_sync_data(dry_run=False)


def _guarded(run_id, service):
    """A task of a run that raises is recorded on the run (failed at once unless transient) and
    not raised again: the log and the run page have it, and django-q2 would not retry it anyway
    (ack_failures); the sweeper retries transient ones."""
    try:
        service(run_id=run_id)
    except Exception as exc:
        services.record_task_error(run_id=run_id, exc=exc, task=service.__name__)
