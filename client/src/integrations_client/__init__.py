"""Client of the integrations service: push records in one call.

from integrations_client import Client
report = Client("https://integrations.example.com", api_key).sync("products", records)
"""

__version__ = "0.1.0"

from .client import Client  # noqa: E402
from .encoding import BatchEncoder, EncodedBatch, Unparseable, encode_batch  # noqa: E402
from .errors import (  # noqa: E402
    ApiError,
    AuthError,
    ConflictError,
    IntegrationsClientError,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeout,
    WebhookVerificationError,
)
from .report import END_STATES, SETTLED_STATES, Report  # noqa: E402
from .retry import RetryPolicy  # noqa: E402
from .webhooks import verify_webhook  # noqa: E402

__all__ = [
    "END_STATES",
    "SETTLED_STATES",
    "ApiError",
    "AuthError",
    "BatchEncoder",
    "Client",
    "ConflictError",
    "EncodedBatch",
    "IntegrationsClientError",
    "NotFoundError",
    "PayloadTooLarge",
    "RateLimited",
    "Report",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "Unparseable",
    "ValidationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "encode_batch",
    "verify_webhook",
    "__version__",
]
