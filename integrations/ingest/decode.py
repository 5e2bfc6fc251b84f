"""Decoding: bytes of a batch, or a file, into records. Never reads a file whole into memory.

Batch payloads are stored as received; their content type says how to read them:
- application/json          {"seq": 1, "records": [...], "deletes": [...]}  (the API)
- application/x-protobuf    the Batch message of integrations/proto/batch.proto (the API)
- application/x-ndjson      one record per line (chunks of an uploaded JSON or NDJSON file)
- text/csv                  a header and rows (chunks of an uploaded CSV file)
"""

import csv
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ijson
import msgspec

from ..exceptions import MalformedBatch, TooLarge

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
FILE_FORMATS = {"json": JSON, "ndjson": NDJSON, "csv": CSV}
# CSV columns every upload ignores: the ones the errors CSV adds (error_code, error_message...),
# so that a fixed errors file goes back as it is (SPEC section 4)
IGNORED_COLUMN_PREFIX = "error_"


class Unparseable:
    """A record that could not be decoded (a bad NDJSON line, a CSV row with extra cells)."""

    __slots__ = ("text", "reason")

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason


@dataclass
class DecodedBatch:
    seq: int | None
    records: list[Any] | None  # None: not decoded yet (JSON: see json_bytes; protobuf: see columns)
    deletes: list[Any] = field(default_factory=list)
    # records are strings to be coerced (CSV): validation runs msgspec in lax mode
    lax: bool = False
    # the decompressed JSON bytes, for the typed fast path
    json_bytes: bytes | None = None
    # the payload may hold a NUL character (checked record by record only then)
    nul_possible: bool = True
    # records may hold Decimal numbers (JSON numbers with a fraction or an exponent, read exactly)
    # or non-finite floats (protobuf doubles): the validator looks at numbers one by one only then
    numbers_possible: bool = True
    # a columnar protobuf batch's values, one list per field (proto/columns.py's ColumnBatch), for
    # the typed fast path; `records()` is the batch record by record
    columns: Any = None

    def careful(self) -> "DecodedBatch":
        """The batch with its records decoded one by one, for the careful path."""
        if self.records is not None:
            return self
        if self.columns is not None:
            c = self.columns
            return DecodedBatch(seq=self.seq, records=c.records(), deletes=self.deletes, nul_possible=c.nul_possible,
                                numbers_possible=c.numbers_possible)
        return decode_json_batch(self.json_bytes)


class ExactNumbers:
    """msgspec's `float_hook` for untyped decoding, so that no number is rounded on the way (SPEC
    section 4: no silent reinterpretation). A JSON number with a fraction or an exponent becomes the
    float that is written exactly so (9.99: msgspec turns it into Decimal("9.99") for a Decimal
    field, as from the text), else a Decimal of its text (19.999999999999999999, 1e400, 1.50);
    `seen` says whether there was such a Decimal. The validator turns those into floats wherever the
    schema does not want a Decimal, and refuses the ones no float can hold."""

    __slots__ = ("seen",)

    def __init__(self):
        self.seen = False

    def __call__(self, text: str) -> float | Decimal:
        number = float(text)
        if repr(number) == text:
            return number
        self.seen = True
        return Decimal(text)


class _Envelope(msgspec.Struct):
    records: list[msgspec.Raw]
    deletes: list[msgspec.Raw] = []
    seq: int | None = None


class _ReceivedEnvelope(_Envelope, forbid_unknown_fields=True):
    """The envelope as the API accepts it: a misspelt field (`"delets"`) is refused, never ignored."""


ENVELOPE_FIELDS = ("seq", "records", "deletes")


class _GenericEnvelope(msgspec.Struct):
    records: list[Any]
    # UNSET when absent: the key count of the envelope must be exact (see duplicate keys below)
    deletes: list[Any] | msgspec.UnsetType = msgspec.UNSET
    seq: int | None | msgspec.UnsetType = msgspec.UNSET


# --- duplicate keys -----------------------------------------------------------------------------
# msgspec (like every fast decoder) keeps the last of a key named twice in one object, silently.
# SPEC section 4 makes such a record a parse_error. Finding them costs little: in valid JSON, once
# escaped quotes are gone every quote delimits a string, and a string followed (after blanks) by a
# colon is an object key; so one count over the bytes gives the number of keys, duplicates
# included, and the decoded values give the number without them (encoded again, each key once).
# Only when the two differ are records looked at one by one.

_BLANKS = b" \t\r\n"


def count_keys(text: bytes, *, compact: bool = False) -> int:
    """The number of object keys in valid JSON `text`, a key named twice counted twice; C speed.
    `compact`: no blanks outside strings (what msgspec writes). (`text.count(b":")` is a quicker
    upper bound: colons inside strings count too.)"""
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    return (text if compact else text.translate(None, _BLANKS)).count(b'":')


def keys_differ(text: bytes, distinct: int | None) -> bool:
    """Whether valid JSON `text` has more object keys than `distinct`, the number of keys its
    decoded objects hold: then some object names a key twice."""
    if distinct is None:
        return True
    return text.count(b":") != distinct and count_keys(text) != distinct


_plain_json = msgspec.json.Encoder()


def distinct_keys(value) -> int | None:
    """The number of object keys in a decoded value (each object's keys are distinct); None when it
    cannot be encoded again (then callers look record by record)."""
    try:
        return count_keys(_plain_json.encode(value), compact=True)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def keys_named_twice(text: bytes | str) -> list[str]:
    """The keys an object in `text` names more than once (slow: for the few suspects only)."""
    twice: list[str] = []

    def pairs(items):
        names = [k for k, _ in items]
        if len(set(names)) != len(names):
            seen = set()
            twice.extend(k for k in names if k in seen or seen.add(k))
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return []
    return list(dict.fromkeys(twice))


def twice_message(twice: list[str]) -> str:
    return "record names " + ", ".join(repr(k) for k in twice[:10]) + " more than once; which one counts is ambiguous"


def mark_keys_named_twice(records: list, raws) -> None:
    """Replace each record whose JSON text names a key twice by an Unparseable (a parse_error)."""
    for i, (record, raw) in enumerate(zip(records, raws)):
        if isinstance(record, Unparseable) or not isinstance(record, (dict, list)):
            continue
        text = bytes(raw)
        if keys_differ(text, distinct_keys(record)):
            twice = keys_named_twice(text)
            if twice:
                records[i] = Unparseable(text[:2000].decode("utf-8", "replace"), twice_message(twice))


def decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding, refusing to inflate past `limit` bytes (a gzip bomb is a 413)."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise TooLarge(f"batch is {len(raw)} bytes, above the limit of {limit}")
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise MalformedBatch(f"unsupported Content-Encoding {encoding!r}; use gzip")
    wbits = 31 if encoding != "deflate" else 15
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise MalformedBatch(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"batch inflates beyond the limit of {limit} bytes")
    if not inflater.eof:
        raise MalformedBatch(f"body is a truncated {encoding} stream")
    if inflater.unused_data:  # a second gzip member or trailing bytes: never dropped silently
        raise MalformedBatch(f"body has data after the end of its {encoding} stream")
    return out


@dataclass
class EnvelopeSummary:
    seq: int | None
    received: int
    deletes: list


def summarize_batch(body: bytes, content_type: str) -> EnvelopeSummary:
    """Check a decompressed batch body at receipt: well-formed, its seq, its record count.

    Records themselves are not validated here (that is the worker's job); only the envelope."""
    if content_type == PROTOBUF:
        from ..proto.codec import summarize_batch as summarize_proto

        try:
            seq, received, deletes = summarize_proto(body)  # counts records without decoding them
        except ValueError as exc:
            raise MalformedBatch(f"body is not a valid protobuf Batch: {exc}") from None
        return EnvelopeSummary(seq=seq, received=received, deletes=deletes)
    if content_type != JSON:
        raise MalformedBatch(f"unsupported content type {content_type!r}")
    try:
        env = msgspec.json.decode(body, type=_ReceivedEnvelope)
        # skipping over records (msgspec.Raw) checks neither their text's UTF-8 nor their depth,
        # and a worker that cannot read, store or encode a stored batch fails the whole run
        body.decode("utf-8")
    except msgspec.ValidationError as exc:
        unknown = _UNKNOWN_FIELD.match(str(exc))
        if unknown:
            raise MalformedBatch(f"unknown field `{unknown[1]}` in the batch; its fields are {', '.join(ENVELOPE_FIELDS)}",
                                 details={unknown[1]: ["Unknown field."]}) from None
        raise MalformedBatch(f"body is not a batch object: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedBatch(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep") from None
    if _nested_deeper_than(body, MAX_NESTING):
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep")
    _check_envelope_repeats(body)
    try:
        deletes = [msgspec.json.decode(d) for d in env.deletes]
    except msgspec.ValidationError as exc:  # 1e400: out of a float's range
        raise MalformedBatch(f"body is not a batch object: {exc} (in `deletes`)") from None
    return EnvelopeSummary(seq=env.seq, received=len(env.records), deletes=deletes)


_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`$")


def _check_envelope_repeats(body: bytes) -> None:
    """A field given twice in the envelope (a second `records` would silently replace the first) is
    malformed. msgspec keeps the last silently, so look closer only when a name occurs twice at all:
    a cheap byte count on the usual path, a full parse only then."""
    if body.count(b'"records"') < 2 and body.count(b'"deletes"') < 2:
        return
    try:
        top = json.loads(body, object_pairs_hook=lambda pairs: pairs)
    except (ValueError, RecursionError):
        return  # msgspec read it; what Python's parser cannot is not a repeat
    names = [name for name, _ in top] if isinstance(top, list) else []
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise MalformedBatch(f"the batch gives `{repeated[0]}` more than once",
                             details={name: ["Given more than once."] for name in repeated})


# most levels of arrays and objects in a JSON batch, the envelope included (protobuf's own limit is
# 100 too); deeper values cannot be stored and encoded again without exhausting Python's stack
MAX_NESTING = 100
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
_STRING = re.compile(rb'"[^"]*"')


def _nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether valid JSON nests arrays and objects more than `limit` levels deep, at C speed:
    drop escapes, keep only quotes and brackets, drop strings, then peel innermost pairs."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = body.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in shape:  # strings holding brackets
        shape = _STRING.sub(b"", shape)
    for _ in range(limit):
        if not shape:
            return False
        # one level a round: a pair emptied by this round's replacements waits for the next
        shape = shape.replace(b"[]", b".").replace(b"{}", b".").replace(b".", b"")
    return bool(shape)


def check_deletes(deletes: list, parse_key) -> None:
    """Every entry of `deletes` is a key of the target (`parse_key`, Target.parse_key): a string or
    an integer as its key field's type, or an object of a composite key's fields."""
    for i, key in enumerate(deletes):
        if parse_key(key) is None:
            raise MalformedBatch("every entry of `deletes` must be a key of the integration's target: a non-empty "
                                 "string or an integer as the key's type, or an object of a composite key's fields",
                                 details={"deletes": {str(i): "not a usable key"}})


def decode_json_batch(body: bytes) -> DecodedBatch:
    """A JSON batch as generic records (the slow path, when the typed decode found a problem)."""
    numbers = ExactNumbers()
    raws = None
    try:
        env = msgspec.json.Decoder(_GenericEnvelope, float_hook=numbers).decode(body)
        records, deletes = env.records, env.deletes or []
        seq = None if env.seq is msgspec.UNSET else env.seq
        envelope_keys = 1 + (env.deletes is not msgspec.UNSET) + (env.seq is not msgspec.UNSET)
        distinct = distinct_keys(records)
        suspect = keys_differ(body, None if distinct is None else envelope_keys + distinct)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        # one record that cannot be decoded must not sink the batch: decode record by record, and
        # such a record becomes a parse_error
        try:
            env = msgspec.json.decode(body, type=_Envelope)
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise MalformedBatch(f"stored batch is not a batch object: {exc}") from None
        decoder = msgspec.json.Decoder(float_hook=numbers)
        raws, seq, suspect = env.records, env.seq, True
        records = [_decode_one(decoder, raw) for raw in raws]
        deletes = [_decode_one(decoder, raw) for raw in env.deletes]
    if suspect:
        mark_keys_named_twice(records, raws if raws is not None else msgspec.json.decode(body, type=_Envelope).records)
    return DecodedBatch(seq=seq, records=records, deletes=deletes, json_bytes=body,
                        nul_possible=b"\\u0000" in body, numbers_possible=numbers.seen)


def _decode_one(decoder: msgspec.json.Decoder, raw: msgspec.Raw):
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        text = bytes(raw)[:2000].decode("utf-8", "replace")
        return Unparseable(text, f"record cannot be decoded: {exc}")


def decode_batch(body: bytes, content_type: str) -> DecodedBatch:
    """A stored, decompressed batch payload as records, for validation."""
    if content_type == JSON:
        # decoded lazily: the validator's typed fast path reads the bytes directly
        return DecodedBatch(seq=None, records=None, json_bytes=body)
    if content_type == PROTOBUF:
        from ..proto.codec import read_batch

        try:
            seq, records, columns, deletes, non_finite = read_batch(body)
        except ValueError as exc:  # accepted at receipt, so only a stored payload that changed
            raise MalformedBatch(f"stored batch is not a valid protobuf Batch: {exc}") from None
        return DecodedBatch(seq=seq, records=records, deletes=deletes, numbers_possible=non_finite, columns=columns)
    nul = b"\x00" in body or b"\\u0000" in body
    if content_type == NDJSON:
        numbers = ExactNumbers()
        records = list(iter_ndjson(io.BytesIO(body), numbers))
        if keys_differ(body, distinct_keys([r for r in records if not isinstance(r, Unparseable)])):
            mark_keys_named_twice(records, [line.strip() for line in body.split(b"\n") if line.strip()])
        return DecodedBatch(seq=None, records=records, nul_possible=nul, numbers_possible=numbers.seen)
    if content_type == CSV:
        # cells are text; numbers in JSON cells are looked at when the cells are parsed
        return DecodedBatch(seq=None, records=list(iter_csv(io.BytesIO(body))), lax=True, nul_possible=nul,
                            numbers_possible=False)
    raise MalformedBatch(f"unsupported stored content type {content_type!r}")


# --- files: streamed, record by record -------------------------------------------------------


def iter_json_array(stream) -> Iterator[Any]:
    """Items of a top-level JSON array, in constant memory (ijson's C backend). Numbers with a
    fraction or an exponent come as Decimal, exactly as written; integers of any size as int."""
    stream = _ArrayStart(stream)
    # objects that note a key named twice (a dict keeps the last one silently): such an item comes
    # out as an Unparseable, to be a parse_error of its own
    objects = type("_FileObject", (_Object,), {"__slots__": (), "twice": {}})
    twice = objects.twice  # id of an object -> (the object, its keys set twice)
    try:
        for item in ijson.items(_NestingGuard(stream, MAX_NESTING), "item", map_type=objects):
            if twice:  # ijson builds items ahead: take the objects of this one
                mine = [twice.pop(id(o))[1] for o in _objects_in(item) if id(o) in twice]
                if mine:
                    try:
                        text = _exact_json.encode(item)[:2000].decode("utf-8", "replace")
                    except (TypeError, ValueError, OverflowError, RecursionError):
                        text = repr(item)[:2000]
                    item = Unparseable(text, twice_message(list(dict.fromkeys(k for keys in mine for k in keys))))
            yield item
    except ijson.JSONError as exc:
        raise MalformedBatch(f"file is not a valid JSON array: {exc}") from None


class _Object(dict):
    """ijson's map type for uploads: a dict that notes a key set twice in `twice` (a dict on a
    subclass made for each file)."""

    __slots__ = ()
    twice: dict

    def __setitem__(self, key, value):
        if key in self:
            self.twice.setdefault(id(self), (self, []))[1].append(key)
        dict.__setitem__(self, key, value)


def _objects_in(value) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _objects_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects_in(v)


_JSON_SPACE = b" \t\r\n"
_KINDS = {ord("{"): "an object", ord('"'): "a string", ord("n"): "null", ord("t"): "a boolean",
          ord("f"): "a boolean"}


class _ArrayStart:
    """A binary stream of JSON that refuses a top level other than an array (SPEC section 4: a JSON
    upload is an array of records, or NDJSON): an object, a number or a string would otherwise be
    read as no records at all, and a full run would propose deleting every row. An empty file stays
    an empty file (an empty snapshot)."""

    def __init__(self, stream):
        self.stream = stream
        self.checked = False

    def read(self, size=-1):
        data = self.stream.read(size)
        if self.checked or not data:
            return data
        head = data.lstrip(_JSON_SPACE)
        if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as the CSV reader allows
            head = head[3:].lstrip(_JSON_SPACE)
        if not head:
            return data  # only blanks so far: look again at the next read
        self.checked = True
        if head[0] != ord("["):
            kind = _KINDS.get(head[0], "a number" if head[:1] in b"-0123456789" else "not JSON")
            raise MalformedBatch(f"file is not a valid JSON array of records: its top level is {kind}")
        return data


class _NestingGuard:
    """A binary stream of JSON that refuses, chunk by chunk as it is read, to nest deeper than
    `limit`: ijson's C backend keeps a prefix string per open level, so its memory grows with the
    square of the depth (200 KB of "[" would take tens of GB). Strings are followed across chunks;
    the bound it checks is exact at chunk ends and at most one chunk's inner depth above the truth."""

    def __init__(self, stream, limit: int):
        self.stream, self.limit = stream, limit
        self.depth = 0
        self.in_string = False
        self.carry = b""  # an odd trailing backslash: it escapes the next chunk's first byte

    def read(self, size=-1):
        data = self.stream.read(size)
        if data:
            self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        text = self.carry + data
        run = len(text) - len(text.rstrip(b"\\"))
        self.carry = b"\\" if run % 2 else b""
        if run % 2:
            text = text[:-1]
        if b"\\" in text:
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        shape = text.translate(None, _NOT_STRUCTURE)
        if self.in_string:
            shape = b'"' + shape
        self.in_string = shape.count(b'"') % 2 == 1
        if self.in_string:
            shape += b'"'
        shape = shape.replace(b'""', b"")
        if b'"' in shape:
            shape = _STRING.sub(b"", shape)
        inner = 0
        while shape.count(b"[]") or shape.count(b"{}"):
            inner += 1
            if inner > self.limit:
                break
            shape = shape.replace(b"[]", b".").replace(b"{}", b".").replace(b".", b"")
        opens = shape.count(b"[") + shape.count(b"{")
        closes = len(shape) - opens  # what is left: closes of earlier chunks' levels, then new opens
        if max(self.depth, self.depth - closes + opens) + inner > self.limit:
            raise MalformedBatch(f"file is nested more than {self.limit} levels deep")
        self.depth += opens - closes


def iter_ndjson(stream, numbers: ExactNumbers | None = None) -> Iterator[Any]:
    decoder = msgspec.json.Decoder(float_hook=numbers or ExactNumbers())
    for line in stream:
        line = line.strip()
        if not line:
            continue
        if line[:1] == b"\x00":  # an item of a JSON array that was unreadable as a record: see _ndjson_line
            try:
                text, reason = msgspec.json.decode(line[1:], type=tuple[str, str])
                yield Unparseable(text, reason)
                continue
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass
        try:
            yield decoder.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for bad UTF-8
            yield Unparseable(line[:2000].decode("utf-8", "replace"), f"line is not valid JSON: {exc}")
        except RecursionError:
            yield Unparseable(line[:2000].decode("utf-8", "replace"), "line is nested too deeply")


def iter_csv(stream) -> Iterator[Any]:
    """Rows as dicts of strings; an empty cell is an absent field (SPEC section 5), and so is a cell of
    a column named error_* (IGNORED_COLUMN_PREFIX: the errors CSV's own columns)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        check_csv_header(header)
        width = len(header)
        # an ignored column's name becomes None, its cell is dropped with the empty ones
        names = [None if h.startswith(IGNORED_COLUMN_PREFIX) else h for h in header]
        ignored = None in names
        for row in reader:
            if not row or (len(row) == 1 and row[0] == ""):
                continue
            if len(row) > width:
                yield Unparseable(",".join(row)[:2000], f"row has {len(row)} cells, the header {width}")
                continue
            if ignored:
                yield {name: cell for name, cell in zip(names, row) if cell != "" and name is not None}
            else:
                yield {name: cell for name, cell in zip(header, row) if cell != ""}
    except UnicodeDecodeError as exc:
        raise MalformedBatch(f"file is not valid UTF-8: {exc}") from None
    except csv.Error as exc:
        raise MalformedBatch(f"file is not valid CSV: {exc}") from None
    finally:
        text.detach()


def iter_file_chunks(stream, fmt: str, size: int) -> Iterator[tuple[bytes, str, int]]:
    """Split an uploaded file into stored-batch payloads of at most `size` records each:
    yields (payload bytes, content type, record count). JSON and NDJSON become NDJSON chunks
    (a bad NDJSON line is kept as it came, to fail as a parse_error); CSV stays CSV."""
    if fmt == "csv":
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                return
            check_csv_header([h.strip() for h in header])
            rows: list[list[str]] = []
            for row in reader:
                if not row or (len(row) == 1 and row[0] == ""):
                    continue
                rows.append(row)
                if len(rows) >= size:
                    yield _csv_bytes(header, rows), CSV, len(rows)
                    rows = []
            if rows:
                yield _csv_bytes(header, rows), CSV, len(rows)
        except UnicodeDecodeError as exc:
            raise MalformedBatch(f"file is not valid UTF-8: {exc}") from None
        except csv.Error as exc:
            raise MalformedBatch(f"file is not valid CSV: {exc}") from None
        finally:
            text.detach()
        return
    if fmt == "json":
        lines = (_ndjson_line(item) for item in iter_json_array(stream))
    elif fmt == "ndjson":
        lines = (line.strip() for line in stream if line.strip())
    else:
        raise MalformedBatch(f"unknown file format {fmt!r}; use json, ndjson or csv")
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield b"\n".join(chunk) + b"\n", NDJSON, len(chunk)
            chunk = []
    if chunk:
        yield b"\n".join(chunk) + b"\n", NDJSON, len(chunk)


# Decimals as JSON numbers with their exact digits (msgspec's default writes them as strings)
_exact_json = msgspec.json.Encoder(decimal_format="number")


def _ndjson_line(item) -> bytes:
    """One item of a JSON array as an NDJSON line, numbers exactly as they were written. An item
    that is no readable record becomes a line starting with NUL (never valid JSON) that carries its
    text and the reason, so that only its record fails (a parse_error), never the whole file."""
    if isinstance(item, Unparseable):
        return b"\x00" + _plain_json.encode((item.text, item.reason))
    try:
        return _exact_json.encode(item)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return b"\x00" + _plain_json.encode((repr(item)[:2000], f"item cannot be read as a record: {exc}"))


def check_csv_header(header: list[str]) -> None:
    """A column named twice would have one of its cells dropped silently: the file is malformed
    (SPEC section 4), one parse_error for the file rather than one per row."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise MalformedBatch(f"file is not valid CSV: the header names the column {name!r} twice")
        seen.add(name)


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def guess_format(filename: str, explicit: str | None = None) -> str:
    if explicit:
        fmt = explicit.lower().strip()
    else:
        name = (filename or "").lower()
        fmt = next((f for f in ("ndjson", "jsonl", "json", "csv") if name.endswith("." + f)), "")
        fmt = "ndjson" if fmt == "jsonl" else fmt
    if fmt not in FILE_FORMATS:
        raise MalformedBatch(
            f"cannot tell the format of {filename!r}: name it .json, .ndjson or .csv, or pass format=json|ndjson|csv"
        )
    return fmt
