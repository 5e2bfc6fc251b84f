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
