"""Staging one validated batch: valid records to the target's staging table, failures to
RecordError, listed deletes to StagedDelete. Called inside the transaction that marks the batch
validated, so a batch is staged once or not at all."""

from ..models import RecordError, StagedDelete
from . import staging
from .validate import BatchResult


def stage_batch(*, run_id, seq: int, result: BatchResult, target) -> None:
    staging.write(target, run_id, seq, result.valid)
    if result.problems:
        RecordError.objects.bulk_create(
            (RecordError(run_id=run_id, seq=seq, index=p.index, key=p.key, code=p.code, message=p.message,
                         fields=p.fields, record=p.record) for p in result.problems),
            batch_size=1000,
        )
    if result.deletes:
        StagedDelete.objects.bulk_create(
            (StagedDelete(run_id=run_id, seq=seq, key=key) for key in dict.fromkeys(result.deletes)),
            batch_size=2000,
        )
