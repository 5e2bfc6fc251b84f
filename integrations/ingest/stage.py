"""Staging: a validated batch's records, errors and deletes written where the apply finds them.

PostgreSQL: one COPY of the batch into the staging table. Elsewhere: bulk_create.
Called inside the transaction that marks the batch validated, so a batch is staged once or not at all.
"""

import io

import msgspec
from django.db import connection

from ..models import RecordError, StagedDelete, StagedRecord
from .validate import BatchResult

_encoder = msgspec.json.Encoder()


def stage_batch(*, run_id, seq: int, result: BatchResult, target) -> None:
    if result.valid:
        if connection.vendor == "postgresql":
            _copy_staged(run_id, seq, result)
        else:
            StagedRecord.objects.bulk_create(
                (StagedRecord(run_id=run_id, seq=seq, index=i, key=key, data=target.to_data(rec))
                 for i, key, rec in result.valid),
                batch_size=2000,
            )
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


def _copy_text(value: bytes) -> bytes:
    """Escape a value for COPY's text format."""
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\t" in value or b"\n" in value or b"\r" in value:
        value = value.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return value


def _copy_staged(run_id, seq: int, result: BatchResult) -> None:
    prefix = f"{run_id}\t{seq}\t".encode()
    encode = _encoder.encode
    buf = io.BytesIO()
    write = buf.write
    for index, key, record in result.valid:
        # JSON escapes control characters itself; only its backslashes need doubling for COPY
        data = encode(record)
        if b"\\" in data:
            data = data.replace(b"\\", b"\\\\")
        write(b"%s%d\t%s\t%s\n" % (prefix, index, _copy_text(key.encode()), data))
    buf.seek(0)
    table = StagedRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.copy_expert(f'COPY {table} (run_id, seq, "index", key, data) FROM STDIN', buf, size=1 << 20)
