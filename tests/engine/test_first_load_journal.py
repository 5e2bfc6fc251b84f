"""A first load journals only what the INSERT returns (PostgreSQL, issue 15's cost): the owner has
no rows, so there is nothing to update. Should rows of the owner appear between that check and the
statement, the statement is undone and run in full: the journal still says exactly what happened."""

import pytest

from catalog.models import Product
from integrations.ingest import apply
from integrations.models import RunChange, SyncRun
from tests.support import db_is_postgres, product, sync

pytestmark = pytest.mark.skipif(not db_is_postgres(), reason="the folded journal is PostgreSQL's")
S = SyncRun.Status


def ops(run):
    return sorted((c.op, c.key) for c in RunChange.objects.filter(run=run))


def test_first_load_journals_every_created_row_by_digest(integration, customer):
    run = sync(integration, [product(f"K{i}") for i in range(5)])
    assert run.status == S.SUCCEEDED and run.counts["created"] == 5
    assert ops(run) == [("created", f"K{i}") for i in range(5)]
    assert all(c.digest is not None and c.before is None for c in RunChange.objects.filter(run=run))


def test_rows_appearing_after_the_check_fall_back_to_the_full_statement(integration, customer, monkeypatch):
    first = sync(integration, [product("K0"), product("K1")])
    assert first.status == S.SUCCEEDED
    # the check says "no rows" while the owner has two: the statement updates K1, is undone, and runs in full
    monkeypatch.setattr(apply, "_owner_has_rows", lambda target, owner_id: False)
    run = sync(integration, [product("K0"), product("K1", price="1.00"), product("K2")])
    assert run.status == S.SUCCEEDED, run.message
    assert (run.counts["created"], run.counts["updated"], run.counts["unchanged"]) == (1, 1, 1)
    assert ops(run) == [("created", "K2"), ("updated", "K1")]
    updated = RunChange.objects.get(run=run, op="updated")
    assert updated.before["price"] == "9.99" and updated.after["price"] == "1.00"
    assert Product.objects.get(customer=customer, sku="K1").price == 1
    assert Product.objects.filter(customer=customer).count() == 3
