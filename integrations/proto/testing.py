"""Protobuf batches for tests and benches only: the server's encoder of the row layout (the service
never encodes a batch, and clients use integrations_client's encoder, the columnar layout) and a
whole decode into dicts. The service reads batches with codec.py: summarize_batch at receipt,
read_batch in the worker."""

from collections.abc import Iterable
from decimal import Decimal

from . import batch_pb2, codec

NULL = batch_pb2.NULL_VALUE


def decode_batch(data: bytes) -> tuple[int | None, list[dict], list]:
    """(seq or None, records, deletes), either layout, records as dicts. Raises ValueError exactly
    when the batch endpoint's check at receipt (codec.summarize_batch) does."""
    codec.summarize_batch(data)
    seq, records, columns, deletes, _ = codec.read_batch(data)
    return seq, (columns.records() if columns is not None else records), deletes


def _set(value: batch_pb2.Value, obj) -> None:
    if obj is None:
        value.null_value = NULL
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int):
        if -(2**63) <= obj < 2**63:
            value.int_value = obj
        else:
            value.decimal_value = str(obj)
    elif isinstance(obj, float):
        value.double_value = obj
    elif isinstance(obj, Decimal):
        value.decimal_value = str(obj)
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, dict):
        target = value.object_value
        target.SetInParent()
        for k, v in obj.items():
            _set(target.fields[str(k)], v)
    elif isinstance(obj, (list, tuple)):
        target = value.list_value
        target.SetInParent()
        for item in obj:
            _set(target.values.add(), item)
    else:
        value.string_value = str(obj)


def encode_batch(records: Iterable[dict], *, seq: int | None = None, deletes: Iterable = ()) -> bytes:
    records = list(records)
    fields: dict[str, int] = {}
    for record in records:
        for name in record:
            fields.setdefault(name, len(fields))
    deletes = list(deletes)
    batch = batch_pb2.Batch(seq=seq or 0, fields=list(fields), deletes=[k for k in deletes if isinstance(k, str)])
    for key in deletes:
        if not isinstance(key, str):
            _set(batch.delete_keys.add(), key)
    width = len(fields)
    for record in records:
        pb_record = batch.records.add()
        slots = [pb_record.values.add() for _ in range(width)]
        for name, obj in record.items():
            _set(slots[fields[name]], obj)
    return batch.SerializeToString()
