"""Reading record files in constant memory, with the standard library only.

JSON arrays are split item by item with `json.JSONDecoder.raw_decode` over a sliding buffer (no
ijson needed); NDJSON line by line. Numbers are read as the server reads files: integers as int,
others as float (a float keeps its shortest text, so 9.99 stays 9.99 as a decimal on the server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from .encoding import Unparseable

_WHITESPACE = " \t\n\r"
UNPARSEABLE_TEXT = 2000  # characters of a bad line that are sent (and kept by the server)
MAX_RECORD_BYTES = 64 * 1024 * 1024


class FileFormatError(ValueError):
    """The file is not what its format says."""


def guess_format(path: str, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    lowered = path.lower()
    for ext, name in ((".ndjson", "ndjson"), (".jsonl", "ndjson"), (".json", "json"), (".csv", "csv")):
        if lowered.endswith(ext):
            return name
    raise FileFormatError(f"cannot tell the format of {path!r} from its name; pass --format json|ndjson|csv")


def iter_json_array(stream: IO[str], *, chunk_size: int = 1 << 16) -> Iterator[Any]:
    """The items of a top-level JSON array, one at a time."""
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        data = stream.read(chunk_size)
        if not data:
            eof = True
            return False
        buf, pos = buf[pos:] + data, 0
        return True

    def skip_ws() -> str:
        """The next non-blank character ('' at the end of the file), not consumed."""
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    if skip_ws() != "[":
        raise FileFormatError("the file is not a JSON array: it does not start with [")
    pos += 1
    if skip_ws() == "]":
        pos += 1
    else:
        index = 0
        while True:
            skip_ws()
            while True:
                try:
                    item, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as exc:
                    if more():
                        if len(buf) - pos > MAX_RECORD_BYTES:
                            raise FileFormatError(f"item {index} of the array is over {MAX_RECORD_BYTES} bytes")
                        continue
                    raise FileFormatError(f"item {index} of the array is not valid JSON: {exc.msg}") from None
                if end == len(buf) and more():  # a number may go on in the next chunk
                    continue
                break
            pos = end
            yield item
            index += 1
            sep = skip_ws()
            pos += 1
            if sep == "]":
                break
            if sep != ",":
                raise FileFormatError(
                    f"expected , or ] after item {index - 1} of the array, found {sep or 'the end'!r}"
                )
    if skip_ws() != "":
        raise FileFormatError("the file goes on after the end of its JSON array")


def iter_ndjson(stream: IO[str]) -> Iterator[Any]:
    """One JSON value per line; blank lines are skipped. A line that is not JSON does not stop the
    file: it comes as an `Unparseable` (its first 2,000 characters, as the server keeps them), which
    the client sends so that the server records it as a `parse_error` of the run, as in an upload."""
    for number, line in enumerate(stream, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            yield json.loads(line)
        except RecursionError:
            yield Unparseable(line[:UNPARSEABLE_TEXT], f"line {number} is nested too deeply")
        except ValueError as exc:
            yield Unparseable(line[:UNPARSEABLE_TEXT], f"line {number} is not valid JSON: {exc}")


def iter_records(stream: IO[str], fmt: str) -> Iterator[Any]:
    if fmt == "json":
        return iter_json_array(stream)
    if fmt == "ndjson":
        return iter_ndjson(stream)
    raise FileFormatError(f"{fmt} files are sent as uploads, not read by the client")
