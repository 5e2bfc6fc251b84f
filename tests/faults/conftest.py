"""Fixtures of the fault tests: real gunicorn and django-q2 processes against the pytest-django
PostgreSQL test database, with tasks going through a real broker (never inline).

They need PostgreSQL (several processes share one database, the engine's PostgreSQL path is
what runs in production) and, for the Redis-broker cases, the local Redis. On SQLite they skip.
"""

import os
import uuid

import pytest
import redis
from django.db import connection

from integrations import services
from integrations.models import SyncRun
from tests.support import db_is_postgres

from .stack import Procs, base_env

REDIS_BASE = os.environ.get("FAULTS_REDIS_URL", "redis://127.0.0.1:6379/7")
END_STATES = set(SyncRun.END_STATES) | {SyncRun.Status.NEEDS_REVIEW}


def pytest_collection_modifyitems(config, items):
    if db_is_postgres():
        return
    skip = pytest.mark.skip(
        reason="fault tests run real gunicorn/qcluster processes on PostgreSQL; "
        "they run in the PostgreSQL pass of `make test` (DATABASE_URL=postgres://...)"
    )
    for item in items:
        if "tests/faults/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_BASE, socket_connect_timeout=1).ping())
    except Exception:
        return False


def db_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(request):
    """ "redis" (at-most-once: a task whose worker dies is lost; the sweeper re-queues its run) or
    "orm" (at-least-once: the task is delivered again after Q_RETRY). Parametrize indirectly."""
    kind = getattr(request, "param", "redis")
    if kind == "redis" and not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_BASE}")
    return kind


@pytest.fixture
def procs(transactional_db, tmp_path, settings, broker):
    """A Procs whose environment points at the test database, the test's MEDIA_ROOT (the same
    directory the test process uses) and a queue of its own (a unique cluster name)."""
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # nothing of the test process runs a task inline
    cluster_name = f"faults-{uuid.uuid4().hex[:8]}"
    env = base_env(
        DATABASE_URL=db_url(),
        MEDIA_ROOT=settings.MEDIA_ROOT,
        Q_CLUSTER_NAME=cluster_name,
        REDIS_URL=REDIS_BASE if broker == "redis" else None,
        INTEGRATIONS_REQUEUE_AFTER=5,
        Q_TIMEOUT=600,
        Q_RETRY=660,
    )
    p = Procs(env, tmp_path / "logs")
    p.cluster_name = cluster_name
    try:
        yield p
    finally:
        p.stop_all()
        if broker == "redis":
            try:
                r = redis.Redis.from_url(REDIS_BASE)
                for key in r.scan_iter(f"*{cluster_name}*"):
                    r.delete(key)
            except Exception:
                pass


@pytest.fixture
def tenant(transactional_db):
    """A customer with a `products` integration and an API key."""
    customer = services.customer_create(slug=f"faults-{uuid.uuid4().hex[:6]}", name="Faults Co")
    integration = services.integration_create(customer=customer, slug="products", target="catalog.product")
    _, key = services.api_key_create(customer=customer)
    return customer, integration, key


def sweep_due_now() -> None:
    """Make the sweeper's schedule due: the next scheduler tick of a cluster (every 30 s) runs it,
    instead of up to a minute later (django-q2 schedules are in whole minutes)."""
    from django.utils import timezone
    from django_q.models import Schedule

    from integrations.schedules import ensure_schedules

    ensure_schedules()
    Schedule.objects.filter(name="integrations.sweep").update(next_run=timezone.now() - timezone.timedelta(seconds=1))


def wait_settled(run_id, timeout: float, procs: Procs | None = None) -> SyncRun:
    from .stack import wait_for

    try:
        wait_for(
            lambda: SyncRun.objects.filter(pk=run_id, status__in=END_STATES).exists(),
            timeout,
            f"run {run_id} to settle",
        )
    except AssertionError as exc:
        run = SyncRun.objects.filter(pk=run_id).first()
        state = (
            f"status={run.status} batches={run.batches_done}/{run.batches_total} attempts={run.attempts} "
            f"last_error={run.last_error!r}"
            if run
            else "gone"
        )
        raise AssertionError(f"{exc}; {state}\n{procs.logs() if procs else ''}") from None
    return SyncRun.objects.get(pk=run_id)
