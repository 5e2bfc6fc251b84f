"""The vocabularies of what the service reads: file formats (an upload's `format`, the admin's and
`sync_file`'s choice) and media types (a batch's Content-Type, a stored payload's content type).
Every other module names them from here."""

from django.db import models


class Format(models.TextChoices):
    """The format of an uploaded file (the API's `format`, `sync_file --format`, the admin form)."""

    JSON = "json", "JSON array"
    NDJSON = "ndjson", "NDJSON"
    CSV = "csv", "CSV"


class MediaType:
    """Media types of batch payloads: what the API accepts (JSON, PROTOBUF) and what an uploaded
    file's chunks are stored as (NDJSON, CSV); CSV is also the media type of the CSV answers. Plain
    strings (no Enum): they travel as dict keys into the OpenAPI schema and into the database."""

    JSON = "application/json"
    PROTOBUF = "application/x-protobuf"
    NDJSON = "application/x-ndjson"
    CSV = "text/csv"


# media types read as the protobuf batch; the first is the canonical one
PROTOBUF_ALIASES = (MediaType.PROTOBUF, "application/protobuf", "application/vnd.google.protobuf")


def media_type_of(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`; protobuf aliases -> PROTOBUF."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return MediaType.PROTOBUF if media in PROTOBUF_ALIASES else media
