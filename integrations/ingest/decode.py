"""The batch decoder: a stored, decompressed batch payload into records, for validation.

Batch payloads are stored as received; their content type (formats.MediaType) says how to read them:
- application/json          {"seq": 1, "records": [...], "deletes": [...]}  (the API)
- application/x-protobuf    the Batch message of integrations/proto/batch.proto (the API)
- application/x-ndjson      one record per line (chunks of an uploaded JSON or NDJSON file)
- text/csv                  a header and rows (chunks of an uploaded CSV file)

What happens at receipt (Content-Encoding, the envelope check) is transport.py; uploaded files are
split into those chunks by files.py; how deep JSON may nest is nesting.py.
"""

import io
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..exceptions import MalformedBatch
from ..formats import MediaType
from .files import iter_csv, iter_ndjson
from .records import ExactNumbers, Unparseable, distinct_keys, keys_differ, mark_keys_named_twice


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
            return DecodedBatch(
                seq=self.seq,
                records=c.records(),
                deletes=self.deletes,
                nul_possible=c.nul_possible,
                numbers_possible=c.numbers_possible,
            )
        return decode_json_batch(self.json_bytes)


# --- the JSON envelope --------------------------------------------------------------------------

ENVELOPE_FIELDS = ("seq", "records", "deletes")


class Envelope(msgspec.Struct):
    """A JSON batch with its records (and deletes) left as their JSON text."""

    records: list[msgspec.Raw]
    deletes: list[msgspec.Raw] = []
    seq: int | None = None


class _GenericEnvelope(msgspec.Struct):
    records: list[Any]
    # UNSET when absent: the key count of the envelope must be exact (see records.py, keys named twice)
    deletes: list[Any] | msgspec.UnsetType = msgspec.UNSET
    seq: int | None | msgspec.UnsetType = msgspec.UNSET


def decode_batch(body: bytes, content_type: str) -> DecodedBatch:
    """A stored, decompressed batch payload as records, for validation."""
    if content_type == MediaType.JSON:
        # decoded lazily: the validator's typed fast path reads the bytes directly
        return DecodedBatch(seq=None, records=None, json_bytes=body)
    if content_type == MediaType.PROTOBUF:
        from ..proto.codec import read_batch

        try:
            seq, records, columns, deletes, non_finite = read_batch(body)
        except ValueError as exc:  # accepted at receipt, so only a stored payload that changed
            raise MalformedBatch(f"stored batch is not a valid protobuf Batch: {exc}") from None
        return DecodedBatch(seq=seq, records=records, deletes=deletes, numbers_possible=non_finite, columns=columns)
    nul = b"\x00" in body or b"\\u0000" in body
    if content_type == MediaType.NDJSON:
        numbers = ExactNumbers()
        records = list(iter_ndjson(io.BytesIO(body), numbers))
        if keys_differ(body, distinct_keys([r for r in records if not isinstance(r, Unparseable)])):
            mark_keys_named_twice(records, [line.strip() for line in body.split(b"\n") if line.strip()])
        return DecodedBatch(seq=None, records=records, nul_possible=nul, numbers_possible=numbers.seen)
    if content_type == MediaType.CSV:
        # cells are text; numbers in JSON cells are looked at when the cells are parsed
        return DecodedBatch(
            seq=None, records=list(iter_csv(io.BytesIO(body))), lax=True, nul_possible=nul, numbers_possible=False
        )
    raise MalformedBatch(f"unsupported stored content type {content_type!r}")


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
            env = msgspec.json.decode(body, type=Envelope)
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise MalformedBatch(f"stored batch is not a batch object: {exc}") from None
        decoder = msgspec.json.Decoder(float_hook=numbers)
        raws, seq, suspect = env.records, env.seq, True
        records = [_decode_one(decoder, raw) for raw in raws]
        deletes = [_decode_one(decoder, raw) for raw in env.deletes]
    if suspect:
        mark_keys_named_twice(records, raws if raws is not None else msgspec.json.decode(body, type=Envelope).records)
    return DecodedBatch(
        seq=seq,
        records=records,
        deletes=deletes,
        json_bytes=body,
        nul_possible=b"\\u0000" in body,
        numbers_possible=numbers.seen,
    )


def _decode_one(decoder: msgspec.json.Decoder, raw: msgspec.Raw):
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        text = bytes(raw)[:2000].decode("utf-8", "replace")
        return Unparseable(text, f"record cannot be decoded: {exc}")
