"""Helpers of the client tests (their fixtures `api` and `proxy` are in tests/client/conftest.py): a
customer with an integration and a key on the live server, a client for it, and a loopback HTTP proxy
that injects faults into real traffic."""

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from integrations_client import Client, RetryPolicy

# Quick retries: the behaviour is the same, the suite is not slowed by seconds of backoff.
FAST_RETRY = RetryPolicy(max_retries=4, base_delay=0.05, max_delay=0.2)
# Tasks run inline in the server's request thread, so `complete` answers after the whole run.
TIMEOUT = (5.0, 600.0)


@dataclass
class Api:
    url: str
    key: str
    customer: object
    integration: object
    client: Client

    def new_client(self, url=None, **kwargs) -> Client:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("timeout", TIMEOUT)
        return Client(url or self.url, self.key, **kwargs)


def products(n, start=0, **extra):
    """A generator of n valid product records (never a list: the client must stream it)."""
    for i in range(start, start + n):
        yield {"sku": f"SKU-{i:07d}", "name": f"Product {i}", "price": "9.99", "currency": "EUR", **extra}


class FaultProxy:
    """A loopback HTTP/1.1 proxy in front of the live server.

    `fault(method, fragment, occurrence, action)`: the `occurrence`-th request (1-based) whose
    method and path match suffers `action`, once:
    - "drop": forwarded to the server, whose answer is then thrown away and the connection closed
      (the server did the work; the client sees a dropped connection);
    - an int status (503, 429): answered at once with that status and `headers`, not forwarded.
    `log` lists (method, path, what happened, status the server answered or None)."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.faults: list[dict] = []
        self.counts: dict[tuple, int] = {}
        self.log: list[tuple] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            do_POST = do_PUT = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault(self, method: str, fragment: str, occurrence: int, action, headers: dict | None = None):
        self.faults.append(
            {
                "method": method,
                "fragment": fragment,
                "occurrence": occurrence,
                "action": action,
                "headers": headers or {},
            }
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _fault_for(self, method: str, path: str):
        with self.lock:
            keys = {
                (r["method"], r["fragment"]) for r in self.faults if r["method"] == method and r["fragment"] in path
            }
            for key in keys:
                self.counts[key] = self.counts.get(key, 0) + 1
            for rule in self.faults:
                key = (rule["method"], rule["fragment"])
                if key in keys and self.counts[key] == rule["occurrence"]:
                    return rule
            return None

    def handle(self, request: BaseHTTPRequestHandler):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        rule = self._fault_for(request.command, request.path)
        action = rule["action"] if rule else None
        if isinstance(action, int):
            payload = json.dumps({"error": {"code": "injected", "message": f"injected {action}", "details": {}}})
            request.send_response(action)
            for name, value in rule["headers"].items():
                request.send_header(name, value)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload.encode())
            self.log.append((request.command, request.path, action, None))
            return
        upstream = http.client.HTTPConnection(*self.upstream, timeout=600)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("connection", "keep-alive")}
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        if action == "drop":
            self.log.append((request.command, request.path, "drop", response.status))
            request.close_connection = True
            return  # nothing written: the client sees the connection close
        self.log.append((request.command, request.path, "ok", response.status))
        request.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
