"""The journal in SQL (SPEC 13) stores exactly what the Python journal stores: every run of every
target shape in the repo (an int, string, UUID and composite key; a reference; decimals, JSON,
dates, datetimes, booleans, nulls) is journaled both ways at the moment the engine journals it
(same staging, same table) and the rows compared, type for type (true is not 1, "1.00" not "1.0")."""

import json

import pytest

from integrations import services
from integrations.ingest import apply, journal
from integrations.models import RunChange, SyncRun
from integrations.targets import get_target
from tests.support import product, sync

S = SyncRun.Status


def rows(run) -> list:
    # type-strict: json.dumps tells True from 1 and 1.0 from 1, which == does not
    out = [
        (
            c.op,
            json.dumps(c.key, sort_keys=True),
            json.dumps(c.before, sort_keys=True),
            json.dumps(c.after, sort_keys=True),
        )
        for c in RunChange.objects.filter(run=run)
    ]
    return sorted(out)


@pytest.fixture
def both_ways(monkeypatch):
    """Every journal the engine writes is first written by `_py_record`, read, erased, then written
    by the SQL path; the two are kept in `seen` as (run, python rows, SQL rows), with (SQLite) the
    counts the SQL path hands the upsert beside the diff's."""
    seen = []
    sql_record = journal._sql_record

    def record(run, target, owner_id, doomed, *, upserts=True):
        assert journal.in_sql(target)
        if upserts:
            journal._py_record(run, target, owner_id, doomed)
        elif doomed is not None:  # PostgreSQL, an applied run: the upsert journals its rows itself
            _py_deleted(run, target, doomed)
        expected = rows(run)
        RunChange.objects.filter(run=run).delete()
        counts = sql_record(run, target, owner_id, doomed, upserts=upserts)
        got = rows(run)
        if counts is not None:  # SQLite: the upsert takes its counts from the journal's comparison
            diff = apply.diff_counts(run, target, owner_id)[:2]
            got.append(("counts", *map(str, counts), ""))
            expected = [*expected, ("counts", *map(str, diff), "")]
        seen.append((run.pk, expected, got))
        return counts

    monkeypatch.setattr(journal, "_sql_record", record)
    return seen


def _py_deleted(run, target, doomed):
    """The Python journal of the deletions alone (no staged record compared)."""
    from integrations.ingest import staging

    original = staging.staged
    try:
        staging.staged = lambda target, run_id: original(target, run_id).none()
        journal._py_record(run, target, None, doomed)
    finally:
        staging.staged = original


def check(seen, at_least: int):
    assert len(seen) >= at_least
    for run_id, expected, got in seen:
        assert got == expected, run_id
    assert any(expected for _, expected, _ in seen)


def products(n, rev=0):
    out = []
    for i in range(n):
        out.append(
            product(
                f"P{i}",
                name=f'Prod "{i}" é ✓ rev {rev}',
                price=["19.9", "20", "0.01", "0", "123456789.99"][i % 5] if rev == 0 else f"{i}.{rev}5",
                quantity=i * (rev + 1),
                active=bool((i + rev) % 2),
                attributes=[
                    {},
                    {"b": 1, "a": [1, 2.5, None, True], "é": "x"},
                    {"n": {"deep": [{"x": 1e-7}]}, "big": 12345678901234},
                    {"s": 'with "quotes" and \\ back'},
                ][(i + rev) % 4],
            )
        )
    return out


def test_catalog_product_every_kind_of_run(integration, customer, both_ways):
    assert sync(integration, products(12)).status == S.SUCCEEDED  # all created
    assert sync(integration, products(12)).status == S.SUCCEEDED  # nothing changed
    changed = products(12, rev=1)[:11]  # all changed, P11 gone
    assert sync(integration, changed, mode="full").status == S.SUCCEEDED
    dry = sync(integration, products(14), mode="full", dry_run=True)
    assert dry.status == S.SUCCEEDED
    inc = sync(integration, products(3, rev=2), mode="incremental", deletes=None)
    assert inc.status == S.SUCCEEDED
    deletes = sync(integration, {"records": [product("NEW")], "deletes": ["P4", "P5", "nope"]}, mode="incremental")
    assert deletes.status == S.SUCCEEDED
    assert (
        sync(integration, [product(f"H{i}", active=False) for i in range(20)], mode="incremental").status == S.SUCCEEDED
    )
    held = sync(integration, [product("P0")], mode="full")  # deletes nearly everything: held
    assert held.status == S.NEEDS_REVIEW
    services.run_review(run=held, approve=True, user="staff")
    check(both_ways, 9)
    # the undo reads the SQL path's journal back: the table as it was before the approved run
    undo = services.run_undo(run=held, user="staff")
    undo.refresh_from_db()
    assert undo.status == S.SUCCEEDED, undo.message


CONTACTS = [
    {
        "external_id": 7,
        "email": "a@example.com",
        "signed_up_at": "2024-03-01T10:00:00Z",
        "birth_date": "1990-05-01",
        "score": "12.5",
        "category": "VIP",
    },
    {"external_id": 8, "email": "b@example.com", "signed_up_at": "2024-03-01T10:00:00.123456+02:00"},
    {
        "external_id": 9_000_000_000,
        "email": "c@example.com",
        "signed_up_at": "1999-12-31T23:59:59.000001-05:30",
        "score": "-0.01",
        "category": "STD",
    },
    {"external_id": 10, "email": "d@example.com", "signed_up_at": "2024-01-01T00:00:00Z", "score": "100"},
]
CONTACTS_2 = [
    {**CONTACTS[0], "score": None, "category": "STD", "birth_date": None},
    {**CONTACTS[1], "signed_up_at": "2024-03-01T10:00:01+02:00", "score": "3.1", "category": "VIP"},
    CONTACTS[2],  # unchanged
]
ORDER_LINES = [
    {"order_no": "A", "line": 1, "sku": "S", "quantity": -3, "unit_price": "2.50"},
    {"order_no": "A", "line": 2, "sku": "S", "quantity": 1, "unit_price": "3.1"},
    {"order_no": "B", "line": 1, "sku": "T", "quantity": 0, "unit_price": "9999999999.99"},
    {"order_no": "B ✓", "line": 2, "sku": "T", "quantity": 2, "unit_price": "0"},
]
ORDER_LINES_2 = [{**ORDER_LINES[0], "unit_price": "2.51"}, ORDER_LINES[1], {**ORDER_LINES[2], "sku": "U"}]
DEVICES = [
    {"device_id": "6f1c2b9e-3a44-4b8e-9a51-0c2d3e4f5a6b", "label": "one"},
    {"device_id": "0b7e5c1d-2f3a-4c5b-8d6e-7f8091a2b3c4", "label": "two"},
    {"device_id": "ffffffff-0000-4000-8000-000000000001", "label": "three"},
    {"device_id": "12345678-1234-4234-8234-123456789abc", "label": "four"},
]
DEVICES_2 = [{**DEVICES[0], "label": "ONE"}, DEVICES[1], DEVICES[2]]
SHAPES = {
    "crm.contact": (CONTACTS, CONTACTS_2, 10),
    "crm.order_line": (ORDER_LINES, ORDER_LINES_2, {"order_no": "B ✓", "line": 2}),
    "crm.device": (DEVICES, DEVICES_2, DEVICES[3]["device_id"]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_crm_targets_every_kind_of_run(name, customer, both_ways):
    first, second, gone = SHAPES[name]
    if name == "crm.contact":
        cats = services.integration_create(customer=customer, slug="categories", target="crm.category")
        assert sync(cats, [{"code": "VIP", "name": "V"}, {"code": "STD", "name": "S"}]).status == S.SUCCEEDED
    integration = services.integration_create(customer=customer, slug="shape", target=name)
    both_ways.clear()
    assert sync(integration, first, dry_run=True).status == S.SUCCEEDED  # PostgreSQL too: all created
    assert sync(integration, first).status == S.SUCCEEDED
    assert sync(integration, second, mode="full", dry_run=True).status == S.SUCCEEDED
    assert sync(integration, second, mode="full").status == S.SUCCEEDED
    target = get_target(name)
    key = {k: first[0][k] for k in target.keys} if target.composite else first[0][target.keys[0]]
    again = sync(integration, {"records": first[3:], "deletes": [key]}, mode="incremental")
    assert again.status == S.SUCCEEDED
    explicit = sync(integration, {"records": [], "deletes": [gone]}, mode="incremental")
    assert explicit.status == S.SUCCEEDED
    check(both_ways, 6)
    ops = {op for _, expected, _ in both_ways for op, *_ in expected}
    assert ops - {"counts"} == {"created", "updated", "deleted"}
    undo = services.run_undo(run=explicit, user="staff")
    undo.refresh_from_db()
    assert undo.status == S.SUCCEEDED, undo.message


def test_rendered_values_are_the_python_ones(customer, both_ways):
    """One row spelled out: what the journal holds for each kind of field."""
    cats = services.integration_create(customer=customer, slug="categories", target="crm.category")
    sync(cats, [{"code": "VIP", "name": "V"}])
    integration = services.integration_create(customer=customer, slug="shape", target="crm.contact")
    run = sync(integration, CONTACTS[:1], dry_run=True)  # PostgreSQL too: journaled with its values
    change = RunChange.objects.get(run=run)
    category = get_target("crm.category").owner_rows(customer.pk).get(code="VIP").pk
    assert change.key == 7
    assert change.after == {
        "email": "a@example.com",
        "signed_up_at": "2024-03-01T10:00:00+00:00",
        "birth_date": "1990-05-01",
        "score": "12.50",
        "category": category,
    }
    check(both_ways, 1)
