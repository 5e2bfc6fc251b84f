"""A first load's journal (SPEC 13) on every database: each created row journaled with its values
(SQLite journals a first load without joining the staged records to the table), the counts exact,
invalid records and duplicates not journaled, and the next run journaled against the table."""

from catalog.models import Product
from integrations.ingest.journal import fill_created
from integrations.models import RunChange, SyncRun
from integrations.targets import get_target
from tests.support import product, sync


def journal(run):
    changes = fill_created(
        get_target(run.integration.target), run.integration.customer_id, list(RunChange.objects.filter(run=run))
    )
    return {(c.op, c.key): c.after for c in changes}


def test_a_first_load_journals_every_created_row_and_nothing_else(integration):
    integration.max_error_rate = 1.0
    integration.save(update_fields=["max_error_rate"])
    first = sync(
        integration,
        [product("A", price="1.50"), product("B", quantity=-1), product("C")],
        [product("A", price="2.00"), product("D", attributes={"k": [1, 2]})],
    )
    assert first.status == SyncRun.Status.PARTIAL
    assert (first.created, first.updated, first.unchanged, first.failed) == (3, 0, 0, 2)
    j = journal(first)
    assert set(j) == {("created", "A"), ("created", "C"), ("created", "D")}
    assert j[("created", "A")]["price"] == "1.50" and j[("created", "D")]["attributes"] == {"k": [1, 2]}
    assert Product.objects.filter(customer=integration.customer).count() == 3

    second = sync(integration, [product("A", price="1.50"), product("C", name="renamed"), product("E")], mode="full")
    assert (second.created, second.updated, second.unchanged, second.deleted) == (1, 1, 1, 1)
    assert set(journal(second)) == {("created", "E"), ("updated", "C"), ("deleted", "D")}
