"""Verifying the service's webhooks on the customer's side (Standard Webhooks, written out by hand).

The service signs `"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256 under the secret's
key (the base64 after `whsec_`) and sends `webhook-signature: v1,<base64 signature>` (several,
space-separated, while a secret is being rotated).

    @app.post("/hooks/integrations")
    def hook(request):
        event = verify_webhook(request.body, request.headers, settings.INTEGRATIONS_WEBHOOK_SECRET)
        if event["type"] == "run.failed": ...
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from .errors import WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60
_PREFIX = "whsec_"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    if not value:
        raise WebhookVerificationError(f"missing {name} header")
    return value


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not whsec_ followed by base64") from None


def sign(msg_id: str, timestamp: int, body: bytes | str, secret: str | bytes) -> str:
    """The `webhook-signature` value for a message (`v1,<base64>`): what the service sends."""
    body = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """Check a webhook delivery and return its parsed JSON body; raise WebhookVerificationError if
    the signature does not match, or the timestamp is more than `tolerance` seconds away from now
    (a replay). Pass the raw body bytes exactly as received."""
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from None
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > now + tolerance:
        raise WebhookVerificationError("webhook-timestamp is in the future")
    body_bytes = body.encode() if isinstance(body, str) else bytes(body)
    expected = sign(msg_id, timestamp, body_bytes, secret).split(",", 1)[1].encode()
    matched = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            matched = True  # no early exit: the time taken does not depend on which one matched
    if not matched:
        raise WebhookVerificationError("no matching webhook signature")
    try:
        return json.loads(body_bytes)
    except ValueError:
        raise WebhookVerificationError("the webhook body is not JSON") from None
