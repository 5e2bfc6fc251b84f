"""Webhooks (SPEC section 6) against a real receiver on loopback (pytest-httpserver)."""

import base64
import hashlib
import hmac
import json
import os
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug import Response

from integrations import notify, services, webhooks
from integrations.models import SyncRun, WebhookAttempt, WebhookDelivery
from integrations.selectors import run_representation
from tests.support import product, sync
from tests.support.receivers import DrippingReceiver

S = SyncRun.Status
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


class Receiver:
    """Answers with the given statuses in turn (the last one forever) and keeps what it got."""

    def __init__(self, httpserver, *answers):
        self.answers = list(answers) or [200]
        self.requests = []
        httpserver.expect_request("/hook", method="POST").respond_with_handler(self)

    def __call__(self, request):
        self.requests.append({"headers": dict(request.headers), "body": request.get_data(as_text=True)})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Response):
            return answer
        if callable(answer):
            return answer()
        return Response("ok" if answer < 300 else "no", status=answer)


@pytest.fixture
def hooked(integration, httpserver):
    integration.webhook_url = httpserver.url_for("/hook")
    integration.webhook_secret = SECRET
    integration.save()
    return integration


def make_due():
    WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def header(req, name):
    return {k.lower(): v for k, v in req["headers"].items()}[name]


def test_signed_envelope_verifies_with_the_package_and_by_hand(hooked, httpserver):
    receiver = Receiver(httpserver, 200)
    run = sync(hooked, [product("A"), product("B")])
    assert run.status == S.SUCCEEDED
    assert len(receiver.requests) == 1
    req = receiver.requests[0]

    payload = Webhook(SECRET).verify(req["body"], req["headers"])  # raises if the signature is wrong
    assert payload["type"] == "run.succeeded"
    assert payload["data"] == run_representation(run)
    assert payload["timestamp"] == run.finished_at.isoformat().replace("+00:00", "Z")

    # the same check without the package: HMAC-SHA256 of "<id>.<timestamp>.<body>", key = base64 of the secret
    msg_id, ts = header(req, "webhook-id"), header(req, "webhook-timestamp")
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.{req['body']}".encode(), hashlib.sha256).digest())
    version, signature = header(req, "webhook-signature").split(" ")[0].split(",", 1)
    assert version == "v1" and hmac.compare_digest(signature.encode(), expected)
    assert abs(int(ts) - time.time()) < 60
    assert header(req, "content-type") == "application/json"

    delivery = WebhookDelivery.objects.get(run=run)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.webhook_id == msg_id
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.status_code, attempt.error, attempt.next_attempt_at) == (1, 200, "", None)
    assert attempt.duration_ms >= 0

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(req["body"].replace("succeeded", "failed"), req["headers"])

    # the task delivered twice: still one delivery, one request
    notify.run_event(run_id=run.pk, status=run.status)
    assert WebhookDelivery.objects.filter(run=run).count() == 1
    assert len(receiver.requests) == 1


def test_a_receiver_failing_twice_gets_the_same_webhook_id_three_times(hooked, httpserver):
    receiver = Receiver(httpserver, 500, 503, 200)
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    # the first retry comes 5 s later, from the schedule: nothing is due yet, and no one sleeps
    assert delivery.next_attempt_at - timezone.now() <= timedelta(seconds=5)
    assert notify.deliver_due() == 0
    assert len(receiver.requests) == 1

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=True):
        assert notify.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 503)
    second = delivery.attempt_log.get(number=2)
    assert timedelta(seconds=295) <= second.next_attempt_at - second.started_at <= timedelta(seconds=305)  # 5 min

    make_due()
    assert notify.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("delivered", 3, None)

    ids = {header(r, "webhook-id") for r in receiver.requests}
    assert ids == {delivery.webhook_id} and len(receiver.requests) == 3
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert len({b["timestamp"] for b in bodies}) == 1  # the event's time, the same on every retry
    for r in receiver.requests:
        Webhook(SECRET).verify(r["body"], r["headers"])
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 503), (3, 200)]
    assert notify.deliver_due() == 0


def test_410_gone_stops_the_retries(hooked, httpserver):
    receiver = Receiver(httpserver, 410, 200)
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)
    assert delivery.next_attempt_at is None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert notify.deliver_due() == 0
    assert len(receiver.requests) == 1


def test_retry_after_is_honoured_on_429_and_503(hooked, httpserver):
    later = (timezone.now() + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    receiver = Receiver(
        httpserver,
        Response("slow down", status=429, headers={"Retry-After": "120"}),
        Response("down", status=503, headers={"Retry-After": later}),
        200,
    )
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    first = delivery.attempt_log.get(number=1)
    assert first.status_code == 429
    assert timedelta(seconds=115) <= first.next_attempt_at - first.started_at <= timedelta(seconds=125)
    make_due()
    notify.deliver_due()
    second = delivery.attempt_log.get(number=2)
    assert second.status_code == 503
    assert timedelta(minutes=58) <= second.next_attempt_at - second.started_at <= timedelta(minutes=61)
    make_due()
    notify.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and len(receiver.requests) == 3


def test_gives_up_after_the_last_attempt(hooked, httpserver):
    receiver = Receiver(httpserver, 500)
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    delays = []
    for _ in range(webhooks.MAX_ATTEMPTS + 2):
        make_due()
        notify.deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
    assert "gave up after 8 attempts" in delivery.last_error
    for a in delivery.attempt_log.exclude(next_attempt_at=None):
        delays.append(round((a.next_attempt_at - a.started_at).total_seconds() / 5) * 5)
    assert delays == list(webhooks.BACKOFF)
    assert delivery.attempt_log.last().next_attempt_at is None


def test_a_private_address_is_refused_when_the_setting_is_off(hooked, httpserver, settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    receiver = Receiver(httpserver, 200)
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    assert delivery.status == "failed" and delivery.attempts == 1
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None
    assert "non-public address 127.0.0.1" in attempt.error
    assert receiver.requests == []


@pytest.mark.parametrize(
    "address, public",
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_address_rules(address, public):
    import ipaddress

    assert webhooks.is_public(ipaddress.ip_address(address)) is public


def test_check_url_resolves_the_host(settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://localhost:9/x", "http://127.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        with pytest.raises(webhooks.Refused, match="non-public"):
            webhooks.check_url(url)
    with pytest.raises(webhooks.Refused, match="not an http"):
        webhooks.check_url("ftp://example.com/x")


def test_redirects_are_not_followed(hooked, httpserver):
    receiver = Receiver(httpserver, Response("", status=302, headers={"Location": httpserver.url_for("/other")}))
    httpserver.expect_request("/other").respond_with_data("should not be reached")
    run = sync(hooked, [product("A")])
    attempt = WebhookAttempt.objects.get(delivery__run=run)
    assert attempt.status_code == 302 and "not followed" in attempt.error
    assert len(receiver.requests) == 1
    assert all(req.path != "/other" for req, _ in httpserver.log)


def test_a_slow_receiver_times_out_and_is_retried(hooked, httpserver, settings):
    settings.INTEGRATIONS_WEBHOOK_TIMEOUT = 1

    def slow():
        time.sleep(1.5)
        return Response("late")

    Receiver(httpserver, slow, 200)
    run = sync(hooked, [product("A")])
    delivery = WebhookDelivery.objects.get(run=run)
    attempt = delivery.attempt_log.get()
    assert "timed out" in attempt.error and attempt.status_code is None
    assert 900 <= attempt.duration_ms < 5000
    assert delivery.status == "pending"


def test_needs_review_then_approval_are_two_events(hooked, httpserver):
    receiver = Receiver(httpserver, 200)
    sync(hooked, [product(f"P{i}") for i in range(20)])
    held = sync(hooked, [product("P1")])
    assert held.status == S.NEEDS_REVIEW
    services.run_review(run=held, approve=True, user="staff")
    held.refresh_from_db()
    assert held.status == S.SUCCEEDED
    events = [json.loads(r["body"]) for r in receiver.requests]
    assert [e["type"] for e in events] == ["run.succeeded", "run.needs_review", "run.succeeded"]
    assert events[1]["data"]["status"] == "needs_review" and events[1]["data"]["id"] == str(held.pk)
    assert events[1]["data"]["counts"]["deleted"] == 19
    ids = [header(r, "webhook-id") for r in receiver.requests]
    assert len(set(ids)) == 3


def test_failed_and_cancelled_runs_are_reported(hooked, httpserver):
    receiver = Receiver(httpserver, 200)
    failed = sync(hooked, [product("A"), {"sku": "B"}])
    assert failed.status == S.FAILED
    run, _ = services.run_create(integration=hooked)
    services.run_cancel(run=run)
    types = [json.loads(r["body"])["type"] for r in receiver.requests]
    assert types == ["run.failed", "run.cancelled"]
    assert json.loads(receiver.requests[0]["body"])["data"]["counts"]["failed"] == 1
    # without a URL, no delivery
    hooked.webhook_url = ""
    hooked.save()
    run = sync(hooked, [product("A")])
    assert not WebhookDelivery.objects.filter(run=run).exists()


def test_the_url_and_secret_of_now_are_used_for_retries(hooked, httpserver):
    """A customer who fixes a broken URL (or rotates the secret) gets the retries at the new one."""
    hooked.webhook_url = httpserver.url_for("/broken")
    hooked.save()
    httpserver.expect_request("/broken").respond_with_data("no", status=404)
    run = sync(hooked, [product("A")])
    receiver = Receiver(httpserver, 200)
    new_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    hooked.webhook_url, hooked.webhook_secret = httpserver.url_for("/hook"), new_secret
    hooked.save()
    make_due()
    notify.deliver_due()
    delivery = WebhookDelivery.objects.get(run=run)
    assert delivery.status == "delivered" and delivery.url.endswith("/hook")
    Webhook(new_secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])


def test_the_connected_address_is_checked_too(httpserver, settings):
    """A host that resolved to a public address for check_url() and to a private one at connect
    time (DNS rebinding) is refused at the socket."""
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    httpserver.expect_request("/hook").respond_with_data("ok")
    url = httpserver.url_for("/hook")
    with pytest.raises(webhooks.Refused, match="connected to the non-public address 127.0.0.1"):
        with webhooks._session(url) as session:
            session.post(url, data=b"{}", timeout=5)
    assert len(httpserver.log) == 0
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = True
    with webhooks._session(url) as session:
        assert session.post(url, data=b"{}", timeout=5).status_code == 200


@pytest.fixture
def dripping():
    receiver = DrippingReceiver()
    yield receiver
    receiver.close()


@pytest.mark.slow  # waits out a real deadline
def test_a_dripping_receiver_cannot_hold_a_try_past_the_deadline(integration, dripping, settings):
    settings.INTEGRATIONS_WEBHOOK_TIMEOUT = 3
    integration.webhook_url = dripping.url
    integration.save()
    started = time.monotonic()
    run = sync(integration, [product("A")])  # the first try happens at once
    took = time.monotonic() - started
    assert run.status == S.SUCCEEDED
    attempt = WebhookAttempt.objects.get(delivery__run=run)
    assert took < 3 + 3, took  # the deadline plus slack, not the 30 s of the drip
    assert 2500 <= attempt.duration_ms < 5000, attempt.duration_ms
    assert attempt.status_code is None and "timed out" in attempt.error and "3 s" in attempt.error
    delivery = attempt.delivery
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None  # retried later
    assert dripping.connections == 1


@pytest.mark.slow  # waits out a real deadline
def test_the_deadline_holds_for_the_due_retries_too(integration, dripping, settings):
    settings.INTEGRATIONS_WEBHOOK_TIMEOUT = 2
    integration.webhook_url = dripping.url
    integration.save()
    run = sync(integration, [product("A")])
    make_due()
    started = time.monotonic()
    assert notify.deliver_due() == 1
    assert time.monotonic() - started < 2 + 3
    delivery = WebhookDelivery.objects.get(run=run)
    assert delivery.attempts == 2 and delivery.status == "pending" and "timed out" in delivery.last_error
