"""The nesting guard: how deeply JSON nests arrays and objects, read at C speed (bytes.translate
and bytes.replace, never a Python step per byte), whole or chunk by chunk as a stream is read.

One NestingGuard serves both: the envelope check at receipt and a columnar batch's JSON columns
feed it a whole body once (`nested_deeper_than`); an uploaded JSON file feeds it every chunk ijson
reads (`GuardedStream`), because ijson's C backend keeps a prefix string per open level, so its
memory grows with the square of the depth (200 KB of "[" would take tens of GB). Where a stream is
split never changes the answer (tests/unit/test_nesting_guard.py splits at every offset)."""

import re
from itertools import accumulate

from ..exceptions import MalformedBatch

# most levels of arrays and objects in a JSON batch, the envelope included (protobuf's own limit is
# 100 too); deeper values cannot be stored and encoded again without exhausting Python's stack
MAX_NESTING = 100

_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
_STRING = re.compile(rb'"[^"]*"')
# an open bracket one level down, a close one level up: signed bytes for the exact count
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class NestingGuard:
    """Follows JSON bytes fed in chunks (strings and escapes across chunk ends included) and says
    whether they nest deeper than `limit`. The quick bound (peeling the innermost pairs of each
    chunk, one level a round) is never below the truth; when it exceeds the limit the chunk's depth
    is counted exactly, so the answer is the same wherever the stream is split."""

    def __init__(self, limit: int = MAX_NESTING):
        self.limit = limit
        self.depth = 0  # levels open at the end of what was fed
        self.in_string = False
        self.carry = b""  # an odd trailing backslash: it escapes the next chunk's first byte

    def exceeded_by(self, data: bytes) -> bool:
        """Feed the next chunk; whether the JSON read so far nests deeper than the limit."""
        text = self.carry + data
        run = len(text) - len(text.rstrip(b"\\"))
        self.carry = b"\\" if run % 2 else b""
        if run % 2:
            text = text[:-1]
        if b"\\" in text:  # escapes out: every quote left delimits a string
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        shape = text.translate(None, _NOT_STRUCTURE)  # only quotes and brackets
        if self.in_string:
            shape = b'"' + shape
        self.in_string = shape.count(b'"') % 2 == 1
        if self.in_string:
            shape += b'"'
        shape = shape.replace(b'""', b"")
        if b'"' in shape:  # strings holding brackets
            shape = _STRING.sub(b"", shape)
        brackets = shape
        inner = 0
        while b"[]" in shape or b"{}" in shape:
            inner += 1
            if inner > self.limit:
                break
            # one level a round: a pair emptied by this round's replacements waits for the next
            shape = shape.replace(b"[]", b".").replace(b"{}", b".").replace(b".", b"")
        # what is left: closes of earlier chunks' levels, then opens of new ones
        opens = shape.count(b"[") + shape.count(b"{")
        closes = len(shape) - opens
        start, self.depth = self.depth, self.depth + opens - closes
        if max(start, self.depth) + inner <= self.limit:
            return False
        if self.depth > self.limit:
            return True
        # the pairs peeled may sit below the deepest level left open: count this chunk exactly
        steps = memoryview(brackets.translate(_STEPS)).cast("b")
        return start + max(accumulate(steps, initial=0)) > self.limit


def nested_deeper_than(body: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether valid JSON `body` nests arrays and objects more than `limit` levels deep."""
    return NestingGuard(limit).exceeded_by(body)


class GuardedStream:
    """A binary stream of JSON that refuses, chunk by chunk as it is read, to nest deeper than
    `limit`: a MalformedBatch before the reader behind it sees the chunk."""

    def __init__(self, stream, limit: int = MAX_NESTING):
        self.stream = stream
        self.guard = NestingGuard(limit)

    def read(self, size=-1):
        data = self.stream.read(size)
        if data and self.guard.exceeded_by(data):
            raise MalformedBatch(f"file is nested more than {self.guard.limit} levels deep")
        return data
