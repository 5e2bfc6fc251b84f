"""The columnar layout of a protobuf batch (batch.proto's `Columns`) as Python lists, one per field.

upb turns a whole repeated field into a Python list in C, so reading a batch of 50,000 records costs
a few list conversions per field instead of a Python step per value (the row layout's cost, issue 14:
protobuf was twice as slow as JSON to process). Free-form values (lists, objects) travel as one JSON
array per column, read by msgspec in one call, numbers exactly as in a JSON batch. The validator
converts the columns into the target's schema structs in one call (validate.py); only a batch that
needs care (an absent field, NaN, a NUL character, a free-form value naming a key twice) is turned
into one dict per record and checked record by record, as the row layout is.
"""

from dataclasses import dataclass, field
from typing import Any

import msgspec
from google.protobuf import unknown_fields

from ..ingest.nesting import MAX_NESTING, nested_deeper_than
from ..ingest.records import ExactNumbers, Unparseable, distinct_keys, keys_differ, keys_named_twice, twice_message
from . import batch_pb2

# the typed arrays of a Column, in field-number order (`values` and `json` are read apart)
_TYPED = ("strings", "ints", "doubles", "bools", "decimals")
_KINDS = (*_TYPED, "values", "json")
# a free-form value sits at the same depth as a JSON batch's record fields: under the envelope, the
# records array and the record
_JSON_NESTING = MAX_NESTING - 2


class _Absent:
    __slots__ = ()

    def __repr__(self):
        return "ABSENT"


ABSENT = _Absent()  # the value of a record that does not have the field


def check_columns(batch: batch_pb2.Batch, *, json_read: bool = False) -> int:
    """The number of records of a columnar batch, after checking that its columns can be read;
    ValueError if not (the batch is malformed: a 400 at receipt). `json_read`: the JSON columns
    were checked before (at receipt) and are read whole anyway (read_columns)."""
    columns = batch.columns
    if len(batch.records):
        raise ValueError("a batch carries `records` or `columns`, not both")
    unknown = sorted({f.field_number for m in (columns, *columns.columns) for f in unknown_fields.UnknownFieldSet(m)})
    if unknown:
        raise ValueError(f"unknown field number {', '.join(map(str, unknown))} in the Columns message")
    count, width = columns.count, len(batch.fields)
    if len(columns.columns) != width:
        raise ValueError(f"{len(columns.columns)} columns for {width} fields")
    for name, column in zip(batch.fields, columns.columns):
        kind = _kind(column, count, name)
        for what in ("nulls", "absent"):
            indexes = getattr(column, what)
            if indexes and (kind == "values" or max(indexes) >= count):
                raise ValueError(
                    f"column {name!r}: `{what}` lists a record that is not there"
                    if kind != "values"
                    else f"column {name!r}: `values` says null and absent itself"
                )
        if kind == "json" and not json_read:
            try:
                items = msgspec.json.decode(column.json, type=list[msgspec.Raw])
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
                raise ValueError(f"column {name!r}: `json` is not a JSON array: {exc}") from None
            if len(items) != count:
                raise ValueError(f"column {name!r}: `json` holds {len(items)} values for {count} records")
            if nested_deeper_than(column.json.encode(), _JSON_NESTING + 1):
                raise ValueError(f"column {name!r}: a value is nested more than {_JSON_NESTING} levels deep")
    return count


def _kind(column: batch_pb2.Column, count: int, name: str) -> str | None:
    """Which array holds the column's values (None: no record, so none)."""
    sizes = {kind: len(getattr(column, kind)) for kind in _KINDS if kind != "json"}
    sizes["json"] = count if column.json else 0
    filled = [kind for kind, size in sizes.items() if size]
    if count == 0 and not filled:
        return None
    if len(filled) != 1 or sizes[filled[0]] != count:
        raise ValueError(f"column {name!r} must hold {count} values in exactly one of its arrays")
    return filled[0]


@dataclass
class ColumnBatch:
    """A columnar batch as Python lists. `values[i][r]` is record r's value of `names[i]` (ABSENT
    where the record has none)."""

    count: int
    names: list[str]
    values: list[list]
    absent: bool = False  # some record lacks some field
    nul_possible: bool = False  # some text may hold a NUL character (PostgreSQL stores none)
    # a double is NaN or infinite, or a free-form number was read as a Decimal (see ExactNumbers)
    numbers_possible: bool = False
    unparseable: dict[int, Unparseable] = field(default_factory=dict)  # records that cannot be read

    def records(self) -> list:
        """One dict per record (an Unparseable where it cannot be read), as the row layout decodes."""
        if not self.names:
            out: list[Any] = [{} for _ in range(self.count)]
        elif self.absent:
            names = self.names
            out = [{n: v for n, v in zip(names, row) if v is not ABSENT} for row in zip(*self.values)]
        else:
            names = self.names
            out = [dict(zip(names, row)) for row in zip(*self.values)]
        for index, unreadable in self.unparseable.items():
            out[index] = unreadable
        return out


def read_columns(batch: batch_pb2.Batch) -> ColumnBatch:
    """The columns of a batch that check_columns accepted."""
    count = batch.columns.count
    out = ColumnBatch(count=count, names=list(batch.fields), values=[])
    for name, column in zip(out.names, batch.columns.columns):
        kind = _kind(column, count, name)
        if kind is None:
            values: list = []
        elif kind == "json":
            values = _json_values(column.json, count, out)
        elif kind == "values":
            from .codec import _has_non_finite, _to_python

            values = [_to_python(v) if v.WhichOneof("kind") else ABSENT for v in column.values]
            out.absent = out.absent or any(v is ABSENT for v in values)
            out.numbers_possible = out.numbers_possible or _has_non_finite(values)
            out.nul_possible = out.nul_possible or _may_hold_nul(values)
        else:
            values = list(getattr(column, kind))
            if kind == "doubles":
                total = sum(values)  # NaN or an infinity anywhere makes the sum so (overflow: a false alarm)
                out.numbers_possible = out.numbers_possible or total - total != 0
            elif kind in ("strings", "decimals"):
                out.nul_possible = out.nul_possible or "\x00" in "".join(values)
        for index in column.nulls:
            values[index] = None
        for index in column.absent:
            values[index] = ABSENT
            out.absent = True
        out.values.append(values)
    return out


def _json_values(text: str, count: int, out: ColumnBatch) -> list:
    """A `json` column's values, numbers read exactly (a Decimal where no float is written so);
    a value naming a key twice makes its record unreadable, as in a JSON batch."""
    numbers = ExactNumbers()
    try:
        values = msgspec.json.Decoder(list[Any], float_hook=numbers).decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise ValueError(f"a `json` column is not a JSON array: {exc}") from None
    if len(values) != count:
        raise ValueError(f"a `json` column holds {len(values)} values for {count} records")
    out.numbers_possible = out.numbers_possible or numbers.seen
    out.nul_possible = out.nul_possible or "\\u0000" in text
    body = text.encode()
    if set(map(type, values)) == {dict} and body.count(b":") == sum(map(len, values)):
        return values  # the colons bound the keys from above, the flat objects' keys from below: none twice
    if keys_differ(body, distinct_keys(values)):
        for index, raw in enumerate(msgspec.json.decode(body, type=list[msgspec.Raw])):
            item = bytes(raw)
            if keys_differ(item, distinct_keys(values[index])):
                twice = keys_named_twice(item)
                if twice:
                    out.unparseable[index] = Unparseable(item[:2000].decode("utf-8", "replace"), twice_message(twice))
    return values


def _may_hold_nul(values: list) -> bool:
    try:
        return b"\\u0000" in msgspec.json.encode([v for v in values if v is not ABSENT])
    except (TypeError, ValueError, OverflowError, RecursionError):
        return True
