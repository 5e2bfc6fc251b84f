"""Records -> the bytes of one batch: protobuf (default) or JSON, gzip-compressed by default.

The value mapping is the server's (integrations/proto/codec.py): field names travel once per
batch in `Batch.fields`; each record is a list of values aligned with them; a Value with no kind
set is an absent field, `null_value` is null; Decimal travels as its exact text.

Protobuf batches travel in columns (batch.proto's `Columns`): as records are added, their values
go to one list per field (a batch is held as those lists, not as dicts); `finish()` writes each list
as one typed array in a single call, and free-form values (lists, objects) as one JSON array per
field. A column whose values are of mixed kinds, or that JSON cannot carry exactly as the row
mapping would (NaN, integers beyond 64 bits, non-text keys), goes as one Value per record.
Compression is deterministic (gzip with mtime 0): a retried batch is the same bytes, and
the client keeps those bytes anyway, so the server recognises the retry (same seq, same bytes: 200).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import operator
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain as _chain
from math import isfinite as _isfinite
from typing import Any

from .proto import batch_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
FORMATS = {"protobuf": PROTOBUF, "json": JSON}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class EncodedBatch:
    """One batch ready to post: the exact bytes and the headers that describe them."""

    seq: int
    body: bytes
    content_type: str
    content_encoding: str  # "gzip" or ""
    records: int
    deletes: int

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        return headers


def _plain(obj: Any) -> Any:
    """Types JSON and protobuf do not know, as the text every consumer reads them as."""
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"cannot send a value of type {type(obj).__name__}: {obj!r}")


def _set(value: batch_pb2.Value, obj: Any) -> None:
    """Put one Python value into a protobuf Value (the codec's mapping)."""
    kind = type(obj)
    if kind is str:
        value.string_value = obj
    elif obj is None:
        value.null_value = batch_pb2.NULL_VALUE
    elif kind is bool:
        value.bool_value = obj
    elif isinstance(obj, int) and not isinstance(obj, bool):
        if _INT64_MIN <= obj <= _INT64_MAX:
            value.int_value = obj
        else:
            value.decimal_value = str(obj)
    elif isinstance(obj, float):
        value.double_value = obj
    elif isinstance(obj, Decimal):
        value.decimal_value = str(obj)
    elif isinstance(obj, str):
        value.string_value = str(obj)
    elif isinstance(obj, Mapping):
        target = value.object_value
        target.SetInParent()  # an empty object is still an object, not an absent field
        for key, item in obj.items():
            _set(target.fields[str(key)], item)
    elif isinstance(obj, (list, tuple)):
        target = value.list_value
        target.SetInParent()
        for item in obj:
            _set(target.values.add(), item)
    else:
        _set(value, _plain(obj))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)  # exact; the server reads a decimal from a string as from a number
    if isinstance(obj, Mapping):
        return dict(obj)
    return _plain(obj)


class _Absent:
    __slots__ = ()


_ABSENT = _Absent()  # a record without the field, in a column
_NONE = type(None)
# the typed arrays of a Column: (array, placeholder for null and absent records)
_TYPED = {str: ("strings", ""), bool: ("bools", False), float: ("doubles", 0.0)}
_FREE_FORM = frozenset({dict, list, tuple})
# every digit as "0", every other byte as a blank: a run of 19 zeros is a number that may not fit 64 bits
_DIGITS_ONLY = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))


def _not_like_rows(text: str) -> bool:
    """Whether JSON text may hold what the row mapping would write otherwise: an integer that may
    not fit 64 bits (sent as a decimal), a key that was True, False or None (written as str(key)).
    Digits in strings count too: such a column goes the slow, exact way."""
    if '"true":' in text or '"false":' in text or '"null":' in text:
        return True
    return b"0000000000000000000" in text.encode().translate(_DIGITS_ONLY)  # at C speed, unlike a regex


_free_form_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False)


def _free_form_text(values: list) -> str | None:
    """A free-form column's values as one JSON array, or None where JSON cannot carry them (NaN, an
    infinity, a key JSON cannot have). Objects of plain values (`_plain_records`) are written by
    msgspec when it is installed, as the standard library writes them, about five times as fast."""
    if _msgspec_json is not None and _plain_records([v for v in values if v is not None]):
        try:
            return _msgspec_json.encode(values).decode()
        except (TypeError, ValueError, OverflowError):
            pass  # the standard library says what it cannot write
    try:
        return _free_form_json.encode(values)
    except (ValueError, TypeError):
        return None


def _free_form_size(values: list) -> int:
    """About the bytes of free-form values as JSON, summed (what a batch's size counts): the whole
    list in one msgspec call when installed, without its brackets and commas; a value msgspec cannot
    write counts as its repr, alone."""
    if _msgspec_json is not None:
        try:
            return len(_msgspec_json.encode(values)) - len(values) - 1
        except (TypeError, ValueError, OverflowError):
            if len(values) > 1:
                return sum(_free_form_size([value]) for value in values)
    return sum(map(len, map(repr, values)))


def _fill_column(column: batch_pb2.Column, values: list) -> None:
    """One field's values (one per record) into a Column: one typed array when they are of one
    kind, else one Value per record (the row mapping)."""
    kinds = set(map(type, values))
    holes = kinds & {_NONE, _Absent}
    kinds -= holes
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    present = values if not holes else [v for v in values if v is not None and v is not _ABSENT]
    array = placeholder = text = None
    if kind in _TYPED:
        array, placeholder = _TYPED[kind]
    elif kind is int:
        if _INT64_MIN <= min(present) and max(present) <= _INT64_MAX:
            array, placeholder = "ints", 0
    elif kind is Decimal:
        array, placeholder = "decimals", ""
    elif kinds and kinds <= _FREE_FORM:
        text = _free_form_text([None if v is _ABSENT else v for v in values] if holes else values)
        if text is not None and not _not_like_rows(text):
            array = "json"
    if array is None:  # mixed kinds, all null or absent, or what JSON would not carry as rows do
        for obj in values:
            value = column.values.add()
            if obj is not _ABSENT:
                _set(value, obj)
        return
    if holes:
        if _NONE in holes:
            column.nulls.extend(i for i, v in enumerate(values) if v is None)
        if _Absent in holes:
            column.absent.extend(i for i, v in enumerate(values) if v is _ABSENT)
    if array == "json":
        column.json = text
        return
    if holes:
        values = [placeholder if v is None or v is _ABSENT else v for v in values]
    if array == "decimals":
        values = list(map(str, values))
    getattr(column, array).extend(values)


try:  # optional: about eight times as fast as the standard library for a JSON batch (issue 14)
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - the client depends only on an HTTP client, protobuf and tqdm
    _msgspec = None

_SCALARS = frozenset({str, int, float, bool, _NONE, Decimal})
_PLAIN_TYPES = _SCALARS | {dict, list}
_msgspec_json = _msgspec.json.Encoder(enc_hook=_json_default) if _msgspec is not None else None


def _plain_records(records: list) -> bool:
    """Whether every item of `records` is a dict of plain JSON values only (and Decimals), however
    deep, no float among them NaN or an infinity: what msgspec writes as the standard library would
    (msgspec would also write bytes, sets, dataclasses..., which the standard library, and so this
    client, refuses; and null for NaN). Each level's values are gathered in C, a chunk at a time."""
    if set(map(type, records)) != {dict}:
        return False
    level: list = records
    while level:
        values = list(_chain.from_iterable(v.values() if type(v) is dict else v for v in level))
        kinds = set(map(type, values))
        if not kinds <= _PLAIN_TYPES:
            return False
        if float in kinds and not all(map(_isfinite, (v for v in values if type(v) is float))):
            return False  # msgspec would write null where the standard library refuses
        level = [v for v in values if type(v) is dict or type(v) is list] if kinds & {dict, list} else []
    return True


def _fast_json_record(record: Mapping[str, Any]) -> bytes | None:
    """The record as JSON by msgspec when it writes what the standard library would; else None."""
    if _msgspec_json is None or not _plain_records([record]):
        return None
    try:
        return _msgspec_json.encode(record)
    except (TypeError, ValueError, OverflowError):
        return None


class Unparseable:
    """A record that could not be read (a line of an NDJSON file that is not JSON), to be sent anyway.

    It travels as its text, a JSON string where a record object belongs, which the server records
    as a `parse_error` record error of the run, as it does for such a line in an upload: the rest
    of the file is still synced and the run's counts stay exact (the line is a received record).
    Protobuf cannot carry it: a batch holding one is sent as JSON (`Client.iter_batches`)."""

    __slots__ = ("text", "reason")

    def __init__(self, text: str, reason: str = ""):
        self.text = text
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unparseable({self.text[:40]!r}, {self.reason!r})"


# gzip's fastest level: a 50,000-product JSON batch (7.6 MB) deflates in 0.016 s to 664 kB, against
# 0.043 s to 625 kB at the usual level 6; protobuf 0.009 s to 380 kB against 0.030 s to 364 kB.
# Level 6 would save its 40 kB only on an uplink slower than about 10 Mbit/s
COMPRESSLEVEL = 1


class BatchEncoder:
    """Accumulates the records of one batch in their wire form; `finish()` returns the bytes."""

    def __init__(self, fmt: str = "protobuf", *, compress: bool = True, compresslevel: int = COMPRESSLEVEL):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.format = fmt
        self.compress = compress
        self.compresslevel = compresslevel
        self.count = 0
        self.size = 0  # bytes of the records so far, before compression (a close estimate)
        if fmt == "protobuf":
            self._batch = batch_pb2.Batch()
            self._columns: dict[str, list] = {}  # field -> its values so far, one per record
        else:
            self._parts: list[bytes] = []
            self._json = json.JSONEncoder(
                ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
            )

    def add(self, record: Mapping[str, Any] | Unparseable) -> None:
        if type(record) is dict:  # the usual case, without the slower checks below
            if self.format == "protobuf":
                self._add_protobuf(record)
            else:
                part = _fast_json_record(record) or self._json.encode(record).encode()
                self._parts.append(part)
                self.size += len(part) + 1
            self.count += 1
            return
        if isinstance(record, Unparseable):
            if self.format != "json":
                raise TypeError("an Unparseable record travels only in a JSON batch")
            part = self._json.encode(record.text).encode()
            self._parts.append(part)
            self.size += len(part) + 1
            self.count += 1
            return
        if not isinstance(record, Mapping):
            raise TypeError(f"record {self.count} of the batch is {type(record).__name__}, not a dict")
        if self.format == "protobuf":
            self._add_protobuf(record)
        else:
            part = _fast_json_record(record)
            if part is None:
                part = self._json.encode(record if isinstance(record, dict) else dict(record)).encode()
            self._parts.append(part)
            self.size += len(part) + 1
        self.count += 1

    def add_many(self, records: list, limit: float = float("inf")) -> int:
        """`add` records in order while the batch's size is under `limit` (as adding them one at a
        time would stop); returns how many were added. JSON records that are plain dicts (the usual
        case) are encoded in one msgspec call: the same bytes as one at a time, about four times as fast."""
        if self.format == "json" and _msgspec_json is not None and records and _plain_records(records):
            try:
                part = _msgspec_json.encode(records)[1:-1]  # the items, without the list's brackets
            except (TypeError, ValueError, OverflowError):
                part = b""
            if part and self.size + len(part) < limit:
                self._parts.append(part)
                self.size += len(part) + 1
                self.count += len(records)
                return len(records)
        if self.format == "protobuf" and records and self._add_columns(records, limit):
            return len(records)
        added = 0
        for record in records:
            if self.size >= limit:
                break
            self.add(record)
            added += 1
        return added

    def _add_columns(self, records: list, limit: float) -> bool:
        """Records that are dicts naming the same fields in the same order (the usual chunk) added to
        the protobuf columns a field at a time, their size estimated as `_add_protobuf` does; False
        (nothing added) for any other chunk, or one that would reach `limit`."""
        if set(map(type, records)) != {dict} or len(set(map(tuple, map(dict.keys, records)))) != 1:
            return False
        names = list(records[0])
        if not all(type(name) is str for name in names):
            return False
        values = [list(map(operator.itemgetter(name), records)) for name in names]
        size = 0
        for column in values:
            kinds = set(map(type, column))
            if kinds == {str}:
                text = sum(map(len, column))
                size += (text if all(map(str.isascii, column)) else 3 * text) + 2 * len(column)
            elif kinds <= _FREE_FORM:
                size += _free_form_size(column)
            elif not kinds & _FREE_FORM and str not in kinds:
                size += 10 * len(column)
            else:
                return False  # mixed: the sizes record by record
        if self.size + size >= limit:
            return False
        columns, count, n = self._columns, self.count, len(records)
        for name, column in zip(names, values):
            if name not in columns:
                columns[name] = [_ABSENT] * count
            columns[name].extend(column)
        for column in columns.values():  # fields these records do not have
            if len(column) == count:
                column.extend([_ABSENT] * n)
        self.size += size
        self.count += n
        return True

    def _add_protobuf(self, record: Mapping[str, Any]) -> None:
        columns = self._columns
        count = self.count
        size = 0
        for name, obj in record.items():
            column = columns.get(name)
            if column is None:
                if not isinstance(name, str):
                    raise TypeError(f"field name {name!r} is not a string")
                column = columns[name] = [_ABSENT] * count
            column.append(obj)
            # the size on the wire, closely enough to keep a batch under the server's byte limit
            kind = type(obj)
            if kind is str:
                size += len(obj) + 2 if obj.isascii() else 3 * len(obj) + 2
            elif kind in _FREE_FORM:
                size += _free_form_size([obj])
            else:
                size += 10
        if len(record) != len(columns):  # fields this record does not have
            for column in columns.values():
                if len(column) == count:
                    column.append(_ABSENT)
        self.size += size

    def finish(self, seq: int, deletes: Iterable[Any] = ()) -> EncodedBatch:
        """`deletes`: keys, each a string, an integer, a UUID, or a dict of a composite key's fields."""
        deletes = [str(k) if isinstance(k, uuid.UUID) else k for k in deletes]
        if self.format == "protobuf":
            self._batch.seq = seq
            if self._columns or self.count:
                self._batch.fields.extend(self._columns)
                self._batch.columns.count = self.count
                for values in self._columns.values():
                    _fill_column(self._batch.columns.columns.add(), values)
                self._columns.clear()
            # string keys travel in `deletes`, integer and composite keys in `delete_keys`
            self._batch.deletes.extend(k for k in deletes if isinstance(k, str))
            for key in deletes:
                if not isinstance(key, str):
                    _set(self._batch.delete_keys.add(), key)
            body = self._batch.SerializeToString(deterministic=True)
            self._batch.Clear()
            content_type = PROTOBUF
        else:
            head = self._json.encode({"seq": seq, "deletes": deletes})[:-1].encode()  # without the closing brace
            body = b"".join((head, b',"records":[', b",".join(self._parts), b"]}"))
            self._parts.clear()
            content_type = JSON
        encoding = ""
        if self.compress:
            body = gzip.compress(body, compresslevel=self.compresslevel, mtime=0)
            encoding = "gzip"
        return EncodedBatch(
            seq=seq,
            body=body,
            content_type=content_type,
            content_encoding=encoding,
            records=self.count,
            deletes=len(deletes),
        )


def encode_batch(
    records: Iterable[Mapping[str, Any]],
    *,
    seq: int,
    deletes: Iterable[Any] = (),
    fmt: str = "protobuf",
    compress: bool = True,
) -> EncodedBatch:
    encoder = BatchEncoder(fmt, compress=compress)
    for record in records:
        encoder.add(record)
    return encoder.finish(seq, deletes)


def _to_python(value: batch_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "null_value":
        return None
    if kind == "list_value":
        return [_to_python(v) for v in value.list_value.values]
    if kind == "object_value":
        return {k: _to_python(v) for k, v in value.object_value.fields.items()}
    return getattr(value, kind)


def decode_protobuf(data: bytes) -> tuple[int, list[dict[str, Any]], list[Any]]:
    """The inverse of the protobuf encoding, either layout (for tests and debugging): (seq, records, deletes)."""
    batch = batch_pb2.Batch.FromString(data)
    fields = list(batch.fields)
    deletes = [*batch.deletes, *(_to_python(v) for v in batch.delete_keys)]
    if not batch.HasField("columns"):
        records = [
            {name: _to_python(v) for name, v in zip(fields, record.values) if v.WhichOneof("kind")}
            for record in batch.records
        ]
        return batch.seq, records, deletes
    records = [{} for _ in range(batch.columns.count)]
    for name, column in zip(fields, batch.columns.columns):
        if column.json:
            values = json.loads(column.json)
        elif len(column.values):
            values = [_to_python(v) if v.WhichOneof("kind") else _ABSENT for v in column.values]
        else:
            array = next(
                (
                    getattr(column, a)
                    for a in ("strings", "ints", "doubles", "bools", "decimals")
                    if len(getattr(column, a))
                ),
                [],
            )
            values = list(array)
        for i in column.nulls:
            values[i] = None
        for i in column.absent:
            values[i] = _ABSENT
        for record, value in zip(records, values):
            if value is not _ABSENT:
                record[name] = value
    return batch.seq, records, deletes
