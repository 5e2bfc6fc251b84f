"""Decoding: bytes of a batch, or a file, into records. Never reads a file whole into memory.

Batch payloads are stored as received; their content type says how to read them:
- application/json          {"seq": 1, "records": [...], "deletes": [...]}  (the API)
- application/x-protobuf    the Batch message of integrations/proto/batch.proto (the API)
- application/x-ndjson      one record per line (chunks of an uploaded JSON or NDJSON file)
- text/csv                  a header and rows (chunks of an uploaded CSV file)
"""

import csv
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ijson
import msgspec

from ..exceptions import MalformedBatch, TooLarge

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
FILE_FORMATS = {"json": JSON, "ndjson": NDJSON, "csv": CSV}


class Unparseable:
    """A record that could not be decoded (a bad NDJSON line, a CSV row with extra cells)."""

    __slots__ = ("text", "reason")

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason


@dataclass
class DecodedBatch:
    seq: int | None
    records: list[Any] | None  # None: not decoded yet (JSON: see json_bytes)
    deletes: list[Any] = field(default_factory=list)
    # records are strings to be coerced (CSV): validation runs msgspec in lax mode
    lax: bool = False
    # the decompressed JSON bytes, for the typed fast path
    json_bytes: bytes | None = None
    # the payload may hold a NUL character (checked record by record only then)
    nul_possible: bool = True


class _Envelope(msgspec.Struct):
    records: list[msgspec.Raw]
    deletes: list[msgspec.Raw] = []
    seq: int | None = None


class _GenericEnvelope(msgspec.Struct):
    records: list[Any]
    deletes: list[Any] = []
    seq: int | None = None


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
        env = msgspec.json.decode(body, type=_Envelope)
        # skipping over records (msgspec.Raw) checks neither their text's UTF-8 nor their depth,
        # and a worker that cannot read, store or encode a stored batch fails the whole run
        body.decode("utf-8")
    except msgspec.ValidationError as exc:
        raise MalformedBatch(f"body is not a batch object: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedBatch(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep") from None
    if _nested_deeper_than(body, MAX_NESTING):
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep")
    try:
        deletes = [msgspec.json.decode(d) for d in env.deletes]
    except msgspec.ValidationError as exc:  # 1e400: out of a float's range
        raise MalformedBatch(f"body is not a batch object: {exc} (in `deletes`)") from None
    return EnvelopeSummary(seq=env.seq, received=len(env.records), deletes=deletes)


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
    try:
        env = msgspec.json.decode(body, type=_GenericEnvelope)
        records = env.records
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        # one record beyond what can be decoded (a number past a float's range, say) must not sink
        # the batch: decode record by record, and such a record becomes a parse_error
        try:
            env = msgspec.json.decode(body, type=_Envelope)
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise MalformedBatch(f"stored batch is not a batch object: {exc}") from None
        records = [_decode_one(raw) for raw in env.records]
        env.deletes = [_decode_one(raw) for raw in env.deletes]
    return DecodedBatch(seq=env.seq, records=records, deletes=env.deletes, json_bytes=body,
                        nul_possible=b"\\u0000" in body)


def _decode_one(raw: msgspec.Raw):
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        text = bytes(raw)[:2000].decode("utf-8", "replace")
        return Unparseable(text, f"record cannot be decoded: {exc}")


def decode_batch(body: bytes, content_type: str) -> DecodedBatch:
    """A stored, decompressed batch payload as records, for validation."""
    if content_type == JSON:
        # decoded lazily: the validator's typed fast path reads the bytes directly
        return DecodedBatch(seq=None, records=None, json_bytes=body)
    if content_type == PROTOBUF:
        from ..proto.codec import decode_batch as decode_proto

        seq, records, deletes = decode_proto(body)
        return DecodedBatch(seq=seq, records=records, deletes=deletes)
    nul = b"\x00" in body or b"\\u0000" in body
    if content_type == NDJSON:
        return DecodedBatch(seq=None, records=list(iter_ndjson(io.BytesIO(body))), nul_possible=nul)
    if content_type == CSV:
        return DecodedBatch(seq=None, records=list(iter_csv(io.BytesIO(body))), lax=True, nul_possible=nul)
    raise MalformedBatch(f"unsupported stored content type {content_type!r}")


# --- files: streamed, record by record -------------------------------------------------------


def iter_json_array(stream) -> Iterator[Any]:
    """Items of a top-level JSON array, in constant memory (ijson's C backend)."""
    try:
        yield from ijson.items(_NestingGuard(stream, MAX_NESTING), "item", use_float=True)
    except ijson.JSONError as exc:
        raise MalformedBatch(f"file is not a valid JSON array: {exc}") from None


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


def iter_ndjson(stream) -> Iterator[Any]:
    decoder = msgspec.json.Decoder()
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            yield decoder.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for bad UTF-8
            yield Unparseable(line[:2000].decode("utf-8", "replace"), f"line is not valid JSON: {exc}")
        except RecursionError:
            yield Unparseable(line[:2000].decode("utf-8", "replace"), "line is nested too deeply")


def iter_csv(stream) -> Iterator[Any]:
    """Rows as dicts of strings; an empty cell is an absent field (SPEC section 5)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        width = len(header)
        for row in reader:
            if not row or (len(row) == 1 and row[0] == ""):
                continue
            if len(row) > width:
                yield Unparseable(",".join(row)[:2000], f"row has {len(row)} cells, the header {width}")
                continue
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
        lines = (msgspec.json.encode(item) for item in iter_json_array(stream))
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
