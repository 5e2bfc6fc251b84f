"""Records read from JSON text, as every decoder reads them: numbers kept exact (ExactNumbers), a
key named twice in one object found (a parse_error, SPEC section 4), and a record that could not be
read at all kept as an Unparseable, to fail on its own."""

import gc
import json
from contextlib import contextmanager
from decimal import Decimal

import msgspec


@contextmanager
def no_gc():
    """For a block that makes tens of thousands of new objects with no cycles among them (a batch's
    validated records, its staging rows): the cyclic collector would only walk them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Unparseable:
    """A record that could not be decoded (a bad NDJSON line, a CSV row with extra cells)."""

    __slots__ = ("text", "reason")

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason


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


plain_json = msgspec.json.Encoder()
# Decimals as JSON numbers with their exact digits (msgspec's default writes them as strings)
exact_json = msgspec.json.Encoder(decimal_format="number")


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


def distinct_keys(value) -> int | None:
    """The number of object keys in a decoded value (each object's keys are distinct); None when it
    cannot be encoded again (then callers look record by record)."""
    try:
        return count_keys(plain_json.encode(value), compact=True)
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
