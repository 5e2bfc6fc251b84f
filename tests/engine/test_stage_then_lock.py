"""A batch's rows are written before its run's row is locked (so a batch POST or `complete` of the
run does not wait for a COPY), and the checks made under the lock still hold: a batch another worker
staged meanwhile, or whose run ended meanwhile, leaves no row and no error behind."""

import json

from integrations import services
from integrations.ingest import staging
from integrations.models import RecordError, SyncBatch, SyncRun
from integrations.services import processing
from integrations.targets import get_target
from tests.support import product

S = SyncRun.Status


def stored_batch(integration, settings):
    """A receiving run with one stored, unvalidated batch (early validation off) of 2 valid records
    and 1 invalid one."""
    settings.INTEGRATIONS_EARLY_VALIDATION = False
    run, _ = services.run_create(integration=integration, mode="incremental")
    records = [product("A"), product("B"), product("C", price="oops")]
    body = json.dumps({"seq": 1, "records": records}).encode()
    batch, _ = services.batch_receive(run=run, seq=1, body=body, content_type="application/json")
    batch.refresh_from_db()
    assert batch.validated_at is None
    return run, batch


def rows(run) -> int:
    return staging.staged(get_target("catalog.product"), run.pk, None).count()


def test_a_batch_staged_meanwhile_by_another_worker_is_not_staged_twice(integration, settings):
    run, batch = stored_batch(integration, settings)
    stale = SyncBatch.objects.select_related("run__integration__customer").get(pk=batch.pk)
    processing._validate(batch, early_now=True)  # one worker stages it
    assert rows(run) == 3 and RecordError.objects.filter(run=run).count() == 1
    processing._validate(stale, early_now=True)  # another had read it unvalidated: stages, sees, rolls back
    assert rows(run) == 3 and RecordError.objects.filter(run=run).count() == 1
    assert SyncRun.objects.get(pk=run.pk).batches_done == 1


def test_a_batch_whose_run_ended_meanwhile_leaves_nothing(integration, settings):
    run, batch = stored_batch(integration, settings)
    stale = SyncBatch.objects.select_related("run__integration__customer").get(pk=batch.pk)
    services.run_cancel(run=run)
    assert SyncRun.objects.get(pk=run.pk).status == S.CANCELLED
    processing._validate(stale, early_now=True)  # read while receiving; cancelled before its lock
    assert rows(run) == 0 and not RecordError.objects.filter(run=run).exists()
    assert SyncBatch.objects.get(pk=batch.pk).validated_at is None
