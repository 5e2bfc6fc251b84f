"""One error hierarchy; each class maps to an API error code and HTTP status."""


class IntegrationsError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(IntegrationsError):
    code = "invalid"
    status = 400


class MalformedBatch(IntegrationsError):
    code = "malformed"
    status = 400


class NotFound(IntegrationsError):
    code = "not_found"
    status = 404


class PayloadGone(NotFound):
    """A stored payload asked for is no longer in storage (never stored, or purged by retention)."""


class Conflict(IntegrationsError):
    code = "conflict"
    status = 409


class Inactive(Conflict):
    """The integration or its customer was deactivated: its open runs take no batches and are not completed."""

    code = "inactive"


class TooLarge(IntegrationsError):
    code = "too_large"
    status = 413


class IdempotencyMismatch(IntegrationsError):
    code = "idempotency_mismatch"
    status = 422


class StorageFailure(IntegrationsError):
    code = "storage_unavailable"
    status = 503
