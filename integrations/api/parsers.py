"""Request bodies beyond DRF's JSON and multipart: the protobuf batch (integrations/proto/batch.proto).

The batch view reads its raw bytes itself (they are stored as received); this parser exists so the
schema and content negotiation know the media type, and for any view that wants the records."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from ..proto.codec import decode_batch

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# media types read as the protobuf batch; the first is the canonical one
PROTOBUF_ALIASES = (PROTOBUF, "application/protobuf", "application/vnd.google.protobuf")


class JSONParser(parsers.JSONParser):
    """DRF's, with a too deeply nested body a 400 like any other malformed JSON (the standard
    library's decoder raises RecursionError, which DRF would let through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None


class ProtobufParser(BaseParser):
    """The Batch message as {"seq", "records", "deletes"}."""

    media_type = PROTOBUF

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            seq, records, deletes = decode_batch(data)
        except ValueError as exc:
            raise ParseError(f"body is not a valid protobuf Batch: {exc}") from None
        return {"seq": seq, "records": records, "deletes": deletes}


def media_type_of(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`; protobuf aliases -> PROTOBUF."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return PROTOBUF if media in PROTOBUF_ALIASES else media
