"""verify_webhook: Standard Webhooks signatures, checked by hand."""

import base64
import json
import time

import pytest
from integrations_client import WebhookVerificationError, verify_webhook
from integrations_client.webhooks import sign

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps({"type": "run.succeeded", "data": {"id": "r1"}}).encode()


def headers(body=BODY, *, stamp=None, secret=SECRET, msg_id="msg_1"):
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(msg_id, stamp, body, secret),
    }


def test_known_vector():
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, secret)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_good_delivery_returns_the_event():
    assert verify_webhook(BODY, headers(), SECRET) == json.loads(BODY)
    assert (
        verify_webhook(BODY.decode(), {k.title(): v for k, v in headers().items()}, SECRET)["type"] == "run.succeeded"
    )


def test_one_of_several_signatures_may_match():
    h = headers()
    h["webhook-signature"] = "v1,bm90LWl0 " + h["webhook-signature"]
    assert verify_webhook(BODY, h, SECRET)


@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda h: h.update({"webhook-signature": "v1,bm90LWl0"}), "no matching"),
        (lambda h: h.update({"webhook-id": "msg_2"}), "no matching"),
        (lambda h: h.pop("webhook-signature"), "missing webhook-signature"),
        (lambda h: h.update({"webhook-timestamp": "yesterday"}), "not a Unix time"),
    ],
)
def test_tampered_headers_are_refused(tamper, message):
    h = headers()
    tamper(h)
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook(BODY, h, SECRET)


def test_tampered_body_or_other_secret_is_refused():
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY + b" ", headers(), SECRET)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers(), other)


def test_timestamp_tolerance_is_five_minutes():
    now = time.time()
    assert verify_webhook(BODY, headers(stamp=int(now) - 290), SECRET, now=now)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(BODY, headers(stamp=int(now) - 301), SECRET, now=now)
    with pytest.raises(WebhookVerificationError, match="in the future"):
        verify_webhook(BODY, headers(stamp=int(now) + 301), SECRET, now=now)
