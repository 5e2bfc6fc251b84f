"""verify_webhook (written by hand in the client) accepts what the service really sends, and what
the standardwebhooks library signs; it refuses a tampered delivery."""

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from integrations_client import Client, WebhookVerificationError, verify_webhook
from standardwebhooks import Webhook

from integrations import services
from tests.support.client import FAST_RETRY, products

SECRET = "whsec_" + base64.b64encode(b"client-webhook-test-secret-32byt").decode()


def test_a_real_delivery_of_the_service_verifies(live_server, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    customer = services.customer_create(slug="hooked", name="Hooked")
    services.integration_create(
        customer=customer,
        slug="products",
        target="catalog.product",
        webhook_url=httpserver.url_for("/hook"),
        webhook_secret=SECRET,
    )
    _, key = services.api_key_create(customer=customer)
    report = Client(live_server.url, key, retry=FAST_RETRY, timeout=(5, 300)).sync("products", products(3))
    assert report.status == "succeeded"

    deadline = time.monotonic() + 10
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)
    request, _ = httpserver.log[0]
    event = verify_webhook(request.get_data(), request.headers, SECRET)
    assert event["type"] == "run.succeeded" and event["data"]["id"] == report.run_id
    assert event["data"]["counts"]["created"] == 3

    with pytest.raises(WebhookVerificationError):
        verify_webhook(request.get_data() + b" ", request.headers, SECRET)
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-32").decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(request.get_data(), request.headers, other)


def test_agrees_with_the_standardwebhooks_library():
    body = json.dumps({"type": "run.partial", "data": {"id": "r"}})
    now = datetime.now(UTC)
    signature = Webhook(SECRET).sign("msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    assert verify_webhook(body.encode(), headers, SECRET) == json.loads(body)

    from integrations_client.webhooks import sign

    ours = sign("msg_2", int(now.timestamp()), body, SECRET)
    Webhook(SECRET).verify(
        body, {"webhook-id": "msg_2", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": ours}
    )
