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


def start_qcluster(env: dict, scrub=("REDIS_URL",)):
    """Start a real `manage.py qcluster` (ORM broker) on the test database in a session of its own:
    `env` is what the test adds; the names in `scrub` are dropped from the inherited environment
    unless `env` sets them (a Redis URL would pick another broker)."""
    full = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "EMAIL_URL": "dummymail://",
        **env,
    }
    for name in scrub:
        if name not in env:
            full.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_qcluster(proc) -> None:
    """TERM the cluster's process group, then KILL it if it has not stopped in 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def qcluster(workers: int, **env):
    """A real `manage.py qcluster` (ORM broker) on the test database, stopped (TERM, then KILL)
    when the block ends; `env`: what the test adds (DEBUG, webhook settings)."""
    proc = start_qcluster({"Q_WORKERS": str(workers), **env})
    try:
        yield proc
    finally:
        stop_qcluster(proc)
