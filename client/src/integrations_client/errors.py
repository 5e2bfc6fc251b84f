"""Every error the client raises: one hierarchy under IntegrationsClientError.

Answers 4xx of the server become an ApiError subclass chosen by status, carrying the server's
`{"error": {"code", "message", "details"}}`. Transient failures (connection errors, 429, 5xx) are
retried first and raise only when the retries are used up.
"""

from __future__ import annotations

from typing import Any


class IntegrationsClientError(Exception):
    """Base class of every error of this package."""


class TransportError(IntegrationsClientError):
    """The server could not be reached (connection refused or dropped, timeout) after every retry."""


class ApiError(IntegrationsClientError):
    """The server answered with an error status. `code`, `message`, `details` are the server's."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
    ):
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.method = method
        self.url = url
        self.retry_after = retry_after
        super().__init__(f"{status} {code}: {message}")


class ValidationError(ApiError):
    """400 or 422: the request was malformed or refused as invalid."""


class AuthError(ApiError):
    """401 (no, bad or revoked key) or 403 (inactive customer)."""


class NotFoundError(ApiError):
    """404: no such integration or run for this key's customer."""


class ConflictError(ApiError):
    """409: e.g. a seq already taken by other bytes, or a run no longer receiving."""


class PayloadTooLarge(ApiError):
    """413: over 50,000 records or over the byte limit in one batch."""


class RateLimited(ApiError):
    """429 after every retry (each one honoured Retry-After)."""


class ServerError(ApiError):
    """5xx after every retry."""


class WaitTimeout(IntegrationsClientError):
    """The run did not reach an end state (or needs_review) within the poll timeout."""

    def __init__(self, run_id: str, timeout: float, last: dict[str, Any] | None = None):
        self.run_id = run_id
        self.timeout = timeout
        self.last = last or {}
        status = self.last.get("status", "unknown")
        super().__init__(
            f"run {run_id} still {status} after waiting {timeout:g} s; "
            f"it goes on on the server: poll it again with get_run({run_id!r})"
        )


class WebhookVerificationError(IntegrationsClientError):
    """A webhook's signature, id or timestamp did not check out: do not trust its body."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
