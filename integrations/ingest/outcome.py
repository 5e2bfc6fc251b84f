"""The outcome of validating one batch, kept: its valid records, the keys of its failed records and
its listed deletes go to the target's staging table (staging.py), its failures to RecordError, as
values both databases can store. Called inside the transaction that marks the batch validated, so a
batch is staged once or not at all."""

from decimal import Decimal

from ..models import RecordError
from . import staging
from .validate import BatchResult


def stage_batch(*, run_id, seq: int, result: BatchResult, target) -> int:
    """Stage the batch; the number of staging rows written (checked again before the apply)."""
    fits = target.key_fits
    # a failed record's key protects its row from snapshot deletion (SPEC 3 rule 4); a key that
    # does not fit the model's key column names no row, so it needs no staging row
    failed = [(p.index, p.key) for p in result.problems if p.key is not None and fits(p.key)]
    deletes = list(dict.fromkeys(result.deletes))
    written = staging.write(target, run_id, seq, result.valid, failed=failed, deletes=deletes)
    if result.problems:
        key_json = target.key_json
        RecordError.objects.bulk_create(
            (
                RecordError(
                    run_id=run_id,
                    seq=seq,
                    index=p.index,
                    key=_storable(key_json(p.key)),
                    code=p.code,
                    message=_storable(p.message),
                    fields=_storable(p.fields),
                    record=_storable(p.record),
                )
                for p in result.problems
            ),
            batch_size=1000,
        )
    return written


def _storable(value):
    """A value both databases store as JSON: NUL characters (refused by PostgreSQL in text and JSON)
    become U+FFFD; NaN and infinities (which neither accepts in JSON) become the strings "NaN",
    "Infinity", "-Infinity"; an exact Decimal becomes the float of the same value, or its text when
    no float has it (19.999999999999999999 must not show as 20.0 in the error it caused)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v) for v in value]
    if isinstance(value, float):
        if value - value == 0:
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        if value.is_finite():
            number = float(value)
            if number - number == 0 and Decimal(repr(number)) == value:
                return number
        return str(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    return str(value)  # anything else an adapter made: its text
