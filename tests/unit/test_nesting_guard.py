"""The nesting guard (ingest/nesting.py) split at every byte offset: an uploaded JSON file reaches it
in whatever chunks the reader asks for, so where a chunk ends must never change the answer. Hostile
payloads, not only brackets: strings holding brackets and escaped quotes and backslashes, nesting
just under and just over the limit, multi-byte UTF-8 cut in the middle, and a deep value followed by
shallow ones (where a per-chunk bound would overestimate). Every answer is also checked against a
byte-by-byte reference scanner."""

import io
import json

import pytest

from integrations.exceptions import MalformedBatch
from integrations.ingest.files import iter_json_array
from integrations.ingest.nesting import MAX_NESTING, GuardedStream, NestingGuard, nested_deeper_than


def deepest(data: bytes) -> int:
    """The reference: the most levels of arrays and objects open at once, read a byte at a time."""
    depth = most = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            most = max(most, depth)
        elif byte in b"]}":
            depth -= 1
    return most


def fed(chunks, limit: int) -> tuple[bool, int]:
    """Whether the guard refuses the chunks (fed in order, stopping at the first refusal), and the
    depth it ends at."""
    guard = NestingGuard(limit)
    for chunk in chunks:
        if guard.exceeded_by(chunk):
            return True, guard.depth
    return False, guard.depth


def nested(levels: int, inner: bytes = b"1") -> bytes:
    return b"[" * levels + inner + b"]" * levels


def objects(levels: int, inner: bytes = b"1") -> bytes:
    return b'{"k[": ' * levels + inner + b"}" * levels


def text(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


LIMIT = 8  # small, so that every payload below sits at the limit with a few hundred bytes
PAYLOADS = {
    "brackets in strings": text({"a": "[[[{{", "b": ["]]]", "}{"], "c": "[" * 20}),
    "escaped quotes": rb'["a\"[", "\\", "\\\"]]", "x\\\\\"[{", {"\"": "\\\\"}]',
    "backslash runs": b"[" + b", ".join(b'"' + b"\\\\" * n + b'"' for n in range(6)) + b', "\\\\\\"[["]',
    "multi-byte UTF-8": text(["é[", "日本]", {"😀{": 'ü"]'}, ["ß" * 3]]),
    "at the limit": nested(LIMIT),
    "over the limit": nested(LIMIT + 1),
    "objects at the limit": objects(LIMIT - 1, b"[2]"),
    "objects over the limit": objects(LIMIT, b"[2]"),
    "deep strings at the limit": nested(LIMIT - 1, text(["[[[", '\\"]'])),
    "deep strings over the limit": nested(LIMIT, text(["[[[", '\\"{'])),
    # after the deep value's opens, a chunk holds its closes and then shallow pairs: a bound that
    # adds the chunk's inner depth to the deepest level it starts at overestimates there
    "deep then shallow": b"[" + nested(LIMIT - 1) + b', [[1]], {"a": [2]}, [[[3]]]]',
    "shallow then deep": b"[[[0]], " + nested(LIMIT - 1) + b"]",
    "deep value then opens": b'[{"x": ' + nested(LIMIT - 2) + b', "y": [[' + b'"]]"' + b"]]}]",
    "over the limit after strings": b'["[[[[", "]]]]", ' + nested(LIMIT) + b"]",
    "records of every depth": b"[" + b", ".join(nested(n, text(f"é{n}[")) for n in range(LIMIT)) + b"]",
}


@pytest.mark.parametrize("name", PAYLOADS)
def test_the_unsplit_answer_is_the_reference(name):
    data = PAYLOADS[name]
    json.loads(data)  # every payload is valid JSON
    over = deepest(data) > LIMIT
    assert nested_deeper_than(data, LIMIT) == over
    assert fed([data], LIMIT)[0] == over
    if not over:
        assert fed([data], LIMIT)[1] == 0


@pytest.mark.parametrize("name", PAYLOADS)
def test_a_split_at_every_offset_gives_the_unsplit_answer(name):
    data = PAYLOADS[name]
    whole = fed([data], LIMIT)[0]
    for cut in range(len(data) + 1):
        assert fed([data[:cut], data[cut:]], LIMIT)[0] == whole, f"split at byte {cut}"


@pytest.mark.parametrize("name", PAYLOADS)
def test_chunks_of_every_size_give_the_unsplit_answer(name):
    data = PAYLOADS[name]
    whole = fed([data], LIMIT)[0]
    for size in range(1, len(data) + 1):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        refused, depth = fed(chunks, LIMIT)
        assert refused == whole, f"chunks of {size} bytes"
        if not refused:
            assert depth == 0, f"chunks of {size} bytes end {depth} levels deep"


@pytest.mark.parametrize("name", PAYLOADS)
def test_two_cuts_at_every_pair_of_offsets(name):
    data = PAYLOADS[name]
    whole = fed([data], LIMIT)[0]
    step = max(1, len(data) // 60)  # every pair on the short payloads, a grid on the longer ones
    for first in range(0, len(data) + 1, step):
        for second in range(first, len(data) + 1):
            assert fed([data[:first], data[first:second], data[second:]], LIMIT)[0] == whole, (first, second)


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1])
def test_the_real_limit_at_every_offset(levels):
    """A file's records sit one level below the array: `levels` counts the array too."""
    data = b'[{"deep": ' + nested(levels - 2, b'"]\\"["') + b'}, {"shallow": [[1], [2]]}]'
    assert deepest(data) == levels
    whole = fed([data], MAX_NESTING)[0]
    assert whole == (levels > MAX_NESTING)
    for cut in range(len(data) + 1):
        assert fed([data[:cut], data[cut:]], MAX_NESTING)[0] == whole, f"split at byte {cut}"


class Trickle(io.RawIOBase):
    """A binary stream that hands out at most `size` bytes a read, whatever the reader asks for."""

    def __init__(self, data: bytes, size: int):
        self.data, self.size, self.at = data, size, 0

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.size if n is None or n < 0 else min(n, self.size)
        chunk = self.data[self.at : self.at + n]
        self.at += len(chunk)
        return chunk


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_an_uploaded_file_read_in_small_chunks(size):
    """Through the reader uploads use (ijson behind the guard): records at the limit are read,
    whatever the chunk size; one level more refuses the file."""
    under = b'[{"a": ' + nested(MAX_NESTING - 2) + b'}, {"b": "[[[\\"", "c": "\xc3\xa9"}]'
    records = list(iter_json_array(Trickle(under, size)))
    assert len(records) == 2 and records[1] == {"b": '[[["', "c": "é"}
    over = b'[{"a": ' + nested(MAX_NESTING - 1) + b"}]"
    with pytest.raises(MalformedBatch, match=f"nested more than {MAX_NESTING} levels deep"):
        list(iter_json_array(Trickle(over, size)))


def test_the_guarded_stream_refuses_before_the_reader_sees_the_chunk():
    stream = GuardedStream(io.BytesIO(nested(LIMIT + 1)), LIMIT)
    with pytest.raises(MalformedBatch, match=f"nested more than {LIMIT} levels deep"):
        stream.read(4096)
