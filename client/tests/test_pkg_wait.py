"""How `Client.wait` follows a run: the long-poll, and servers that do not know it (no server
needed: a fake session answers)."""

import json
import time

import requests
from integrations_client import Client


class FakeSession:
    """Answers GET runs/{id}/ with the next of `statuses`; `delay(params)` seconds per answer."""

    def __init__(self, statuses, *, refuse_wait=False, honour_wait=False):
        self.statuses = list(statuses)
        self.refuse_wait = refuse_wait
        self.honour_wait = honour_wait
        self.headers = {}
        self.calls = []

    def request(self, method, url, timeout=None, params=None, **kwargs):
        self.calls.append((time.monotonic(), dict(params or {}), timeout))
        response = requests.Response()
        response.url = url
        response.headers["Content-Type"] = "application/json"
        if params and "wait" in params and self.refuse_wait:
            response.status_code = 400
            response._content = json.dumps(
                {
                    "error": {
                        "code": "invalid",
                        "message": "wait: Unknown field.",
                        "details": {"wait": ["Unknown field."]},
                    }
                }
            ).encode()
            return response
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        response.status_code = 200
        response._content = json.dumps(
            {"id": "r1", "status": status, "counts": {}, "progress": {"batches_total": 1, "batches_done": 0}}
        ).encode()
        return response

    def close(self):
        pass


def client(session):
    return Client("http://127.0.0.1:9", "prefix.secret", session=session, timeout=(1.0, 5.0))


def test_wait_asks_for_a_long_poll_with_a_read_timeout_beyond_it():
    session = FakeSession(["processing", "succeeded"])
    assert client(session).wait("r1", long_poll=20).status == "succeeded"
    (_, params, timeout), _ = session.calls
    assert params == {"wait": "20"} and timeout == (1.0, 25.0)


def test_a_server_that_ignores_wait_is_polled_with_a_back_off():
    session = FakeSession(["queued", "queued", "queued", "succeeded"])
    started = time.monotonic()
    assert client(session).wait("r1", interval=0.1, max_interval=0.2).status == "succeeded"
    times = [t for t, _, _ in session.calls]
    assert len(times) == 4 and time.monotonic() - started >= 0.2  # it slept between unchanged answers
    assert all(later - earlier >= 0.09 for earlier, later in zip(times[1:], times[2:]))


def test_a_server_that_refuses_wait_is_polled_without_it():
    session = FakeSession(["queued", "succeeded"], refuse_wait=True)
    assert client(session).wait("r1", interval=0.05).status == "succeeded"
    assert [params for _, params, _ in session.calls] == [{"wait": "25"}, {}, {}]
