"""A batch as it arrives (the API, SPEC section 4): its Content-Encoding undone within the size
limit, then its envelope checked at receipt (`summarize_batch`: well-formed, seq, record count,
deletes). Records themselves are read later by the worker (decode.py)."""

import json
import re
import zlib
from dataclasses import dataclass

import msgspec

from ..exceptions import MalformedBatch, TooLarge
from ..formats import MediaType
from .decode import ENVELOPE_FIELDS, Envelope
from .nesting import MAX_NESTING, nested_deeper_than

# the values of Content-Encoding a batch may come with ("" and identity: none)
CONTENT_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")


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


class _ReceivedEnvelope(Envelope, forbid_unknown_fields=True):
    """The envelope as the API accepts it: a misspelt field (`"delets"`) is refused, never ignored."""


_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`$")


@dataclass
class EnvelopeSummary:
    seq: int | None
    received: int
    deletes: list


def summarize_batch(body: bytes, content_type: str) -> EnvelopeSummary:
    """Check a decompressed batch body at receipt: well-formed, its seq, its record count.

    Records themselves are not validated here (that is the worker's job); only the envelope."""
    if content_type == MediaType.PROTOBUF:
        from ..proto.codec import summarize_batch as summarize_proto

        try:
            seq, received, deletes = summarize_proto(body)  # counts records without decoding them
        except ValueError as exc:
            raise MalformedBatch(f"body is not a valid protobuf Batch: {exc}") from None
        return EnvelopeSummary(seq=seq, received=received, deletes=deletes)
    if content_type != MediaType.JSON:
        raise MalformedBatch(f"unsupported content type {content_type!r}")
    try:
        env = msgspec.json.decode(body, type=_ReceivedEnvelope)
        # skipping over records (msgspec.Raw) checks neither their text's UTF-8 nor their depth,
        # and a worker that cannot read, store or encode a stored batch fails the whole run
        body.decode("utf-8")
    except msgspec.ValidationError as exc:
        unknown = _UNKNOWN_FIELD.match(str(exc))
        if unknown:
            raise MalformedBatch(
                f"unknown field `{unknown[1]}` in the batch; its fields are {', '.join(ENVELOPE_FIELDS)}",
                details={unknown[1]: ["Unknown field."]},
            ) from None
        raise MalformedBatch(f"body is not a batch object: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedBatch(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep") from None
    if nested_deeper_than(body, MAX_NESTING):
        raise MalformedBatch(f"body is nested more than {MAX_NESTING} levels deep")
    _check_envelope_repeats(body)
    try:
        deletes = [msgspec.json.decode(d) for d in env.deletes]
    except msgspec.ValidationError as exc:  # 1e400: out of a float's range
        raise MalformedBatch(f"body is not a batch object: {exc} (in `deletes`)") from None
    return EnvelopeSummary(seq=env.seq, received=len(env.records), deletes=deletes)


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
        raise MalformedBatch(
            f"the batch gives `{repeated[0]}` more than once",
            details={name: ["Given more than once."] for name in repeated},
        )


def check_deletes(deletes: list, parse_key) -> None:
    """Every entry of `deletes` is a key of the target (`parse_key`, Target.parse_key): a string or
    an integer as its key field's type, or an object of a composite key's fields."""
    for i, key in enumerate(deletes):
        if parse_key(key) is None:
            raise MalformedBatch(
                "every entry of `deletes` must be a key of the integration's target: a non-empty "
                "string or an integer as the key's type, or an object of a composite key's fields",
                details={"deletes": {str(i): "not a usable key"}},
            )
