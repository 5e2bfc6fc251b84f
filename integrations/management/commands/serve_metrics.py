"""Serve /metrics on a machine that runs workers only (no web process to answer for them)."""

import os
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError

from ...conf import conf
from ...metrics import UNAUTHORIZED, authorized, events_exposition


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every 15 s is not worth a line
        pass


class Command(BaseCommand):
    help = (
        "Serve this machine's metrics (PROMETHEUS_MULTIPROC_DIR, written by its django-q2 workers) "
        "at /metrics, behind INTEGRATIONS_METRICS_TOKEN. The database gauges are the web's."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9108)
        parser.add_argument("--host", default="0.0.0.0")

    def handle(self, *args, port, host, **options):
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not path or not conf.METRICS_TOKEN:
            raise CommandError("set PROMETHEUS_MULTIPROC_DIR (shared with the workers) and INTEGRATIONS_METRICS_TOKEN")

        def app(environ, start_response):
            if environ.get("PATH_INFO") != "/metrics":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found\n"]
            if not authorized(environ.get("HTTP_AUTHORIZATION", "")):
                start_response(
                    "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')]
                )
                return [UNAUTHORIZED.encode()]
            body = events_exposition(path)
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
            return [body]

        self.stdout.write(f"serving {path} at http://{host}:{port}/metrics")
        with make_server(host, port, app, handler_class=_Quiet) as server:
            server.serve_forever()
