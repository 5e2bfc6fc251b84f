"""Raw payloads (batches, uploads) in Django file storage: local by default, S3 in production.
Nothing here assumes a local path; everything goes through the storage API."""

import secrets

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from .exceptions import StorageFailure


def payload_name(run_id, kind: str, suffix: str) -> str:
    # a random part makes every attempt's name its own, so a failed attempt's leftovers can be removed
    # without touching a file another request wrote (see _discard_partial)
    return f"integrations/{run_id}/{kind}-{secrets.token_hex(4)}-{suffix}"


def save_bytes(name: str, data: bytes) -> str:
    try:
        return default_storage.save(name, ContentFile(data))
    except Exception as exc:  # any storage backend's failure is a 503, never a half-accepted batch
        _discard_partial(name)
        raise StorageFailure(f"could not store the payload: {exc}") from exc


def save_stream(name: str, stream) -> str:
    """Store a file-like object chunk by chunk, without holding it in memory."""
    try:
        return default_storage.save(name, File(stream, name=name.rsplit("/", 1)[-1]))
    except Exception as exc:
        _discard_partial(name)
        raise StorageFailure(f"could not store the file: {exc}") from exc


def _discard_partial(name: str) -> None:
    """A local disk that filled up mid-write leaves a truncated file behind (S3 leaves nothing)."""
    try:
        default_storage.delete(name)
    except Exception:
        pass


def open_payload(name: str):
    return default_storage.open(name, "rb")


def read_payload(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def delete_payload(name: str) -> None:
    if name:
        try:
            default_storage.delete(name)
        except FileNotFoundError:
            pass
