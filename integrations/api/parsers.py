"""Request bodies beyond DRF's JSON and multipart: the protobuf batch (integrations/proto/batch.proto).

The batch view reads its raw bytes itself (they are stored as received and checked by
ingest/transport.summarize_batch), so no parser ever decodes a batch: ProtobufParser only declares
the media type, for content negotiation and the `parses` list an OPTIONS request answers."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from ..formats import MediaType


class JSONParser(parsers.JSONParser):
    """DRF's, with a too deeply nested body a 400 like any other malformed JSON (the standard
    library's decoder raises RecursionError, which DRF would let through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None


class ProtobufParser(BaseParser):
    """The protobuf batch's media type; `request.data` is its raw bytes (the batch view never asks
    for it: it reads `request.stream`)."""

    media_type = MediaType.PROTOBUF

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""
