"""The next step of a run's chain runs in the worker whose task made it due (queue.enqueue's `follow`):
a started run's batches are handed out by the task that started it, and the run is applied by the task
that validated its last batch, without a round trip through the broker each. Anywhere else than in a
worker's task (the web's `complete`, the admin) the step is enqueued as before."""

import json

import pytest

from integrations import services, tasks
from integrations.models import SyncBatch, SyncRun
from integrations.queue import Task
from tests.support import product


@pytest.fixture
def queued(monkeypatch, settings):
    """What went to the broker: (task path, args)."""
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    settings.INTEGRATIONS_EARLY_VALIDATION = False
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, *args)))
    return sent


def _completed_run(integration, batches=2):
    run, _ = services.run_create(integration=integration, mode="incremental")
    for seq in range(1, batches + 1):
        body = json.dumps({"seq": seq, "records": [product(f"S{seq}")]}).encode()
        services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")
    services.run_complete(run=run)
    return run


def test_the_task_that_starts_a_run_hands_out_its_batches(integration, queued):
    run = _completed_run(integration)
    assert queued == [(str(Task.KICK_INTEGRATION), integration.pk)]
    queued.clear()
    tasks.kick_integration(integration.pk)  # as the worker runs it
    batches = list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("pk", flat=True))
    assert queued == [(str(Task.VALIDATE_BATCH), batch) for batch in batches]  # no process_run between
    assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.PROCESSING


def test_the_task_that_validates_the_last_batch_applies_the_run(integration, queued):
    run = _completed_run(integration)
    tasks.kick_integration(integration.pk)
    first, last = SyncBatch.objects.filter(run=run).order_by("seq")
    queued.clear()
    tasks.validate_batch(first.pk)
    assert queued == [] and SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.PROCESSING
    tasks.validate_batch(last.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.created == 2
    assert str(Task.APPLY_RUN) not in [func for func, *_ in queued]
    assert str(Task.RUN_FINISHED) in [func for func, *_ in queued]  # what follows the end still queues


def test_outside_a_task_the_next_step_is_enqueued(integration, queued):
    run = _completed_run(integration)
    queued.clear()
    services.integration_kick(integration_id=integration.pk)  # as a web request or the admin would
    assert queued == [(str(Task.PROCESS_RUN), str(run.pk))]
