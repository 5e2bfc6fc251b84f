"""A run's apply sets PostgreSQL's work_mem for its own transaction (INTEGRATIONS_APPLY_WORK_MEM),
and nothing else's; a value that is no memory size is refused by a system check, not by every apply."""

import pytest
from django.core import checks
from django.db import connection, transaction

from integrations.ingest.apply import set_work_mem
from integrations.models import SyncRun
from tests.support import db_is_postgres, product, sync


def work_mem() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        return cursor.fetchone()[0]


@pytest.mark.skipif(not db_is_postgres(), reason="work_mem is PostgreSQL's")
@pytest.mark.parametrize("value", ["77MB", ""])
def test_set_for_the_transaction_only_and_empty_keeps_the_servers(settings, transactional_db, value):
    settings.INTEGRATIONS_APPLY_WORK_MEM = value
    before = work_mem()
    with transaction.atomic():
        set_work_mem()
        assert work_mem() == (value or before)
    assert work_mem() == before


def test_a_run_applies_with_it(integration, settings):
    settings.INTEGRATIONS_APPLY_WORK_MEM = "64MB"
    run = sync(integration, [product("A"), product("B")])
    assert run.status == SyncRun.Status.SUCCEEDED and run.created == 2


@pytest.mark.parametrize(
    "value, ok", [("128MB", True), ("1 GB", True), ("65536", True), ("", True), ("lots", False), ("12XB", False)]
)
def test_the_system_check(settings, value, ok):
    settings.INTEGRATIONS_APPLY_WORK_MEM = value
    ids = [e.id for e in checks.run_checks() if e.id.startswith("integrations.")]
    assert ("integrations.E006" not in ids) == ok


@pytest.mark.skipif(not db_is_postgres(), reason="ANALYZE before the apply is PostgreSQL's")
def test_statistics_of_every_column_first_then_of_the_owner_and_key_only(integration):
    from django.test.utils import CaptureQueriesContext

    from integrations.ingest import staging
    from integrations.ingest.apply import refresh_statistics
    from integrations.targets import get_target

    target = get_target("catalog.product")
    staging.ensure_table(target)
    sync(integration, [product("A")])
    with connection.cursor() as cursor:  # as on a table no ANALYZE has seen
        cursor.execute("SELECT pg_stat_reset_single_table_counters('catalog_product'::regclass)")
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'catalog_product'::regclass")
    with CaptureQueriesContext(connection) as first:
        refresh_statistics(target)
    with CaptureQueriesContext(connection) as then:
        refresh_statistics(target)
    analysed = [[q["sql"] for q in c.captured_queries if q["sql"].startswith("ANALYZE")] for c in (first, then)]
    assert analysed[0][1] == 'ANALYZE "catalog_product"'
    assert analysed[1][1] == 'ANALYZE "catalog_product" ("customer_id", "sku")'
    # the staging table, ours, from a small sample
    assert [q["sql"] for q in first.captured_queries if "statistics_target" in q["sql"]]
