"""The outcome of validating one batch, kept: its valid records, the keys of its failed records and
its listed deletes go to the target's staging table (staging.py), its failures to RecordError, as
values both databases can store. Made ready before, and written inside, the transaction that marks
the batch validated, so a batch is staged once or not at all, and that transaction (on SQLite, the
database's one write lock) does no per-record Python work."""

from decimal import Decimal

from ..models import RecordError
from . import staging
from .validate import BatchResult


class StagedBatch:
    """A validated batch's staging rows and record errors, ready to write (prepare_batch)."""

    def __init__(self, rows: staging.Prepared, errors: list[RecordError], key_span: list | None = None):
        self.rows, self.errors, self.key_span = rows, errors, key_span

    def write(self) -> int:
        """Inside the caller's transaction: the number of staging rows written (checked again before the apply)."""
        written = self.rows.write()
        if self.errors:
            RecordError.objects.bulk_create(self.errors, batch_size=1000)
        return written


def prepare_batch(*, run_id, seq: int, result: BatchResult, target) -> StagedBatch:
    """The batch's staging rows and errors, made outside any transaction; StagedBatch.write() stores them."""
    fits = target.key_fits
    # a failed record's key protects its row from snapshot deletion (SPEC 3 rule 4); a key that
    # does not fit the model's key column names no row, so it needs no staging row
    failed = [(p.index, p.key) for p in result.problems if p.key is not None and fits(p.key)]
    deletes = list(dict.fromkeys(result.deletes))
    rows = staging.prepare(target, run_id, seq, result.valid, failed=failed, deletes=deletes)
    key_json = target.key_json
    errors = [
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
    ]
    # every key it stages, whatever the row's kind: the span the apply's duplicate search reads
    span = target.key_span([key for _index, key, _rec in result.valid] + [key for _index, key in failed] + deletes)
    return StagedBatch(rows, errors, span)


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
