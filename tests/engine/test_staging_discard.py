"""An ended run's staging rows go (run_cleanup); another unfinished run's rows stay. On PostgreSQL a
table no other run needs is emptied by TRUNCATE: DELETE left dead tuples for a VACUUM that a server
without autovacuum never runs, and the table grew run after run."""

import json

from django.db import connection

from integrations import services
from integrations.ingest import staging
from integrations.models import SyncRun
from integrations.targets import get_target
from tests.support import db_is_postgres, product, sync

S = SyncRun.Status


def rows(run) -> int:
    return staging.staged(get_target("catalog.product"), run.pk, None).count()


def table_pages() -> int:
    """Pages of the staging table on disk (PostgreSQL): 0 after TRUNCATE, more after a DELETE."""
    table = staging.stage_model(get_target("catalog.product"))._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s)", [table])
        return cursor.fetchone()[0]


def receiving_run_with_a_staged_batch(integration):
    run, _ = services.run_create(integration=integration, mode="incremental")
    body = json.dumps({"seq": 1, "records": [product("KEEP")]}).encode()
    services.batch_receive(run=run, seq=1, body=body, content_type="application/json")  # validated early
    assert rows(run) == 1
    return run


def test_an_ended_runs_rows_go_and_another_runs_stay(integration, other_customer):
    theirs = services.integration_create(customer=other_customer, slug="products", target="catalog.product")
    waiting = receiving_run_with_a_staged_batch(theirs)
    done = sync(integration, [product("A"), product("B")])
    assert done.status == S.SUCCEEDED
    assert rows(done) == 0 and rows(waiting) == 1
    if db_is_postgres():
        assert table_pages() > 0  # rows kept for the other run: deleted, not truncated
    services.run_complete(run=waiting)
    assert SyncRun.objects.get(pk=waiting.pk).status == S.SUCCEEDED and rows(waiting) == 0


def test_a_table_no_run_needs_is_emptied(integration):
    done = sync(integration, [product(f"K{i}") for i in range(50)])
    assert done.status == S.SUCCEEDED and rows(done) == 0
    if db_is_postgres():
        assert table_pages() == 0  # truncated: no dead rows left behind
