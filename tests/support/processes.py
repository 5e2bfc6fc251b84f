"""Shared by the tests that start real processes against the test database (manage.py commands,
a qcluster): the database URL they are given, and how to post and wait without tasks inline."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.db import connection

from integrations import services


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_for(run, *states, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in states:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout} s")


def post(run, seq, records, deletes=()):
    body = json.dumps({"seq": seq, "records": records, "deletes": list(deletes)}).encode()
    services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")


@contextlib.contextmanager
def qcluster(workers: int, **env):
    """A real `manage.py qcluster` (ORM broker) on the test database, stopped (TERM, then KILL)
    when the block ends; `env`: what the test adds (DEBUG, webhook settings)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "Q_WORKERS": str(workers),
        "EMAIL_URL": "dummymail://",
        **env,
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
