"""process_run hands out what is left to validate after `complete`: the batches nobody is validating
first, a batch a worker is validating early last (its task waits for that worker: early.wait_for_claim),
so that a free worker starts on real work instead of waiting."""

import json

from integrations import services
from integrations.models import SyncBatch
from integrations.queue import Task
from integrations.services import early, processing
from tests.support import product


def test_claimed_batches_are_handed_out_after_the_unclaimed_ones(integration, settings, monkeypatch):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    settings.INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER = 1
    monkeypatch.setattr(early.QConf, "WORKERS", 1)  # one place, whoever else sends
    run, _ = services.run_create(integration=integration, mode="incremental")
    for seq in (1, 2, 3):
        body = json.dumps({"seq": seq, "records": [product(f"S{seq}")]}).encode()
        services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")
    first = SyncBatch.objects.get(run=run, seq=1)
    assert first.validating_since is not None  # claimed early (its task went to a queue no worker reads)
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    handed = []
    monkeypatch.setattr(processing, "enqueue", lambda task, *args: handed.append((task, *args)))
    services.run_process(run_id=run.pk)
    seqs = {b.pk: b.seq for b in SyncBatch.objects.filter(run=run)}
    assert [(task, seqs[batch_id]) for task, batch_id in handed] == [
        (Task.VALIDATE_BATCH, 2),
        (Task.VALIDATE_BATCH, 3),
        (Task.VALIDATE_BATCH, 1),
    ]
