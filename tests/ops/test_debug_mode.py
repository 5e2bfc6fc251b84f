"""DEBUG on (startproject's default) must not change what a run does (issue 12 point 8). pytest-django
forces DEBUG off, which is how `CursorDebugWrapper.copy_expert() got an unexpected keyword argument
'size'` (PostgreSQL staging) slipped through: these tests turn it on and prove the debug cursor is used."""

import pytest
from django.db import connection, reset_queries
from django.db.backends.utils import CursorDebugWrapper

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun
from tests.support import product, sync
from tests.support.processes import post, qcluster, wait_for

S = SyncRun.Status


@pytest.fixture
def debug_on(transactional_db, settings):
    settings.DEBUG = True
    assert connection.queries_logged
    with connection.cursor() as cursor:  # the wrapper Django uses with DEBUG on: the one that broke COPY
        assert isinstance(cursor, CursorDebugWrapper), type(cursor)
    reset_queries()


def test_a_run_stages_and_applies_with_debug_on(debug_on, integration, customer):
    integration.max_error_rate = 0.5
    integration.save()
    run = sync(integration, [product("D-1"), product("D-2"), product("D-3", price="oops")])
    assert run.status == S.PARTIAL, run.message
    assert (run.created, run.failed) == (2, 1)
    assert sorted(Product.objects.filter(customer=customer).values_list("sku", flat=True)) == ["D-1", "D-2"]
    statements = [query["sql"] for query in connection.queries]
    if connection.vendor == "postgresql":  # the staging COPY went through the debug cursor
        assert any(sql.startswith("COPY ") for sql in statements), statements[:20]
    again = sync(integration, [product("D-1"), product("D-2", name="renamed")], mode="full")
    assert (again.status, again.unchanged, again.updated, again.deleted) == (S.SUCCEEDED, 1, 1, 0)


def test_the_worker_empties_the_query_log_before_each_task(debug_on):
    from django_q.signals import pre_execute

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.queries
    pre_execute.send(sender="django_q", func=test_the_worker_empties_the_query_log_before_each_task, task={})
    assert connection.queries == []


@pytest.fixture
def debug_worker(transactional_db, settings):
    """A real `manage.py qcluster` with DEBUG=true, as a fresh startproject host runs it."""
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    with qcluster(1, DEBUG="true") as proc:
        yield proc


@pytest.mark.slow
def test_a_debug_worker_applies_a_run(debug_worker, integration, customer):
    run, _ = services.run_create(integration=integration, mode="full")
    post(run, 1, [product(f"W-{i}") for i in range(50)])
    post(run, 2, [product(f"W-{i}") for i in range(50, 80)])
    services.run_complete(run=run)
    wait_for(run, S.SUCCEEDED, S.PARTIAL, S.FAILED)
    assert run.status == S.SUCCEEDED, run.message
    assert run.created == 80
    assert Product.objects.filter(customer=customer).count() == 80
