"""Uploaded files, streamed record by record and never read whole into memory: the format of a
file (`guess_format`), its split into stored-batch payloads (`iter_file_chunks`) and the readers of
those payloads (`iter_ndjson`, `iter_csv`). A JSON array becomes NDJSON chunks; CSV stays CSV."""

import csv
import io
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Any

import ijson
import msgspec

from ..exceptions import MalformedBatch
from ..formats import Format, MediaType
from .nesting import MAX_NESTING, GuardedStream
from .records import ExactNumbers, Unparseable, exact_json, plain_json, twice_message

# CSV columns every upload ignores: the ones the errors CSV adds (error_code, error_message...),
# so that a fixed errors file goes back as it is (SPEC section 4)
IGNORED_COLUMN_PREFIX = "error_"


def guess_format(filename: str, explicit: str | None = None) -> str:
    if explicit:
        fmt = explicit.lower().strip()
    else:
        name = (filename or "").lower()
        fmt = next((f for f in ("ndjson", "jsonl", "json", "csv") if name.endswith("." + f)), "")
        fmt = Format.NDJSON.value if fmt == "jsonl" else fmt
    if fmt not in Format.values:
        raise MalformedBatch(
            f"cannot tell the format of {filename!r}: name it .json, .ndjson or .csv, or pass format=json|ndjson|csv"
        )
    return fmt


def iter_file_chunks(stream, fmt: str, size: int) -> Iterator[tuple[bytes, str, int]]:
    """Split an uploaded file into stored-batch payloads of at most `size` records each:
    yields (payload bytes, content type, record count). JSON and NDJSON become NDJSON chunks
    (a bad NDJSON line is kept as it came, to fail as a parse_error); CSV stays CSV."""
    if fmt == Format.CSV:
        with closing(csv_rows(stream)) as rows:
            header = next(rows, None)
            if header is None:
                return
            for chunk in _chunks(rows, size):
                yield _csv_bytes(header, chunk), MediaType.CSV, len(chunk)
        return
    if fmt == Format.JSON:
        lines = (_ndjson_line(item) for item in iter_json_array(stream))
    elif fmt == Format.NDJSON:
        lines = (line.strip() for line in stream if line.strip())
    else:
        raise MalformedBatch(f"unknown file format {fmt!r}; use json, ndjson or csv")
    for chunk in _chunks(lines, size):
        yield b"\n".join(chunk) + b"\n", MediaType.NDJSON, len(chunk)


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- CSV ----------------------------------------------------------------------------------------


def csv_rows(stream) -> Generator[list[str], None, None]:
    """The one CSV reader of a binary stream (UTF-8, a byte order mark allowed): its header row as
    written (the names, stripped, checked by check_csv_header), then every row that is not blank.
    A file that is not UTF-8 or not CSV is a MalformedBatch."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        check_csv_header([h.strip() for h in header])
        yield header
        for row in reader:
            if not row or (len(row) == 1 and row[0] == ""):
                continue
            yield row
    except UnicodeDecodeError as exc:
        raise MalformedBatch(f"file is not valid UTF-8: {exc}") from None
    except csv.Error as exc:
        raise MalformedBatch(f"file is not valid CSV: {exc}") from None
    finally:
        text.detach()


def iter_csv(stream) -> Iterator[Any]:
    """Rows as dicts of strings; an empty cell is an absent field (SPEC section 5), and so is a cell of
    a column named error_* (IGNORED_COLUMN_PREFIX: the errors CSV's own columns)."""
    with closing(csv_rows(stream)) as rows:
        header = next(rows, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        width = len(header)
        # an ignored column's name becomes None, its cell is dropped with the empty ones
        names = [None if h.startswith(IGNORED_COLUMN_PREFIX) else h for h in header]
        ignored = None in names
        for row in rows:
            if len(row) > width:
                yield Unparseable(",".join(row)[:2000], f"row has {len(row)} cells, the header {width}")
                continue
            if ignored:
                yield {name: cell for name, cell in zip(names, row) if cell != "" and name is not None}
            else:
                yield {name: cell for name, cell in zip(header, row) if cell != ""}


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


# --- NDJSON -------------------------------------------------------------------------------------


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


def _ndjson_line(item) -> bytes:
    """One item of a JSON array as an NDJSON line, numbers exactly as they were written. An item
    that is no readable record becomes a line starting with NUL (never valid JSON) that carries its
    text and the reason, so that only its record fails (a parse_error), never the whole file."""
    if isinstance(item, Unparseable):
        return b"\x00" + plain_json.encode((item.text, item.reason))
    try:
        return exact_json.encode(item)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return b"\x00" + plain_json.encode((repr(item)[:2000], f"item cannot be read as a record: {exc}"))


# --- JSON arrays --------------------------------------------------------------------------------


def iter_json_array(stream) -> Iterator[Any]:
    """Items of a top-level JSON array, in constant memory (ijson's C backend). Numbers with a
    fraction or an exponent come as Decimal, exactly as written; integers of any size as int."""
    stream = _ArrayStart(stream)
    # objects that note a key named twice (a dict keeps the last one silently): such an item comes
    # out as an Unparseable, to be a parse_error of its own
    objects: Any = type("_FileObject", (_Object,), {"__slots__": (), "twice": {}})
    twice = objects.twice  # id of an object -> (the object, its keys set twice)
    try:
        for item in ijson.items(GuardedStream(stream, MAX_NESTING), "item", map_type=objects):
            if twice:  # ijson builds items ahead: take the objects of this one
                mine = [twice.pop(id(o))[1] for o in _objects_in(item) if id(o) in twice]
                if mine:
                    try:
                        text = exact_json.encode(item)[:2000].decode("utf-8", "replace")
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
_KINDS = {ord("{"): "an object", ord('"'): "a string", ord("n"): "null", ord("t"): "a boolean", ord("f"): "a boolean"}


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
