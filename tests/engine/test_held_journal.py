"""A run held by the deletion guard journals what approval would change (SPEC 13, issue 15): the
review page lists it with the same download as the changes list; approval replaces it with what
the approved apply did; a rejected run has nothing to undo."""

import csv
import io

import pytest
from django.urls import reverse

from catalog.models import Product
from integrations import services
from integrations.exceptions import Conflict
from integrations.ingest.journal import fill_created
from integrations.models import RunChange, SyncRun
from integrations.targets import get_target
from tests.support import product, sync

S = SyncRun.Status
FIELDS = ("sku", "name", "price", "currency", "quantity", "active", "attributes")


def table(customer):
    return {p["sku"]: p for p in Product.objects.filter(customer=customer).values(*FIELDS)}


def journal(run):
    # as the API reads it: a created row journaled by digest (PostgreSQL) gets `after` from the table
    changes = fill_created(
        get_target(run.integration.target), run.integration.customer_id, list(RunChange.objects.filter(run=run))
    )
    return {(c.op, c.key): (c.before, c.after) for c in changes}


def held_run(integration):
    """20 rows; then a full snapshot keeping K0 (unchanged), K1 (new price), adding N1, N2: it
    would delete 18 of 20 rows, and the guard holds it."""
    seed = sync(integration, [product(f"K{i}") for i in range(20)])
    assert seed.status == S.SUCCEEDED
    held = sync(integration, [product("K0"), product("K1", price="1.00"), product("N1"), product("N2")], mode="full")
    assert held.status == S.NEEDS_REVIEW
    return held


def test_held_run_journals_exactly_what_approval_does(integration, customer):
    held = held_run(integration)
    before_review = table(customer)
    planned = journal(held)
    assert {k for op, k in planned if op == "created"} == {"N1", "N2"}
    assert {k for op, k in planned if op == "updated"} == {"K1"}
    assert {k for op, k in planned if op == "deleted"} == {f"K{i}" for i in range(2, 20)}
    assert table(customer) == before_review  # held: nothing applied
    assert services.undo_candidate(integration).pk != held.pk  # a held run has nothing to undo
    with pytest.raises(Conflict, match="applied nothing"):
        services.run_undo(run=held)

    services.run_review(run=held, approve=True, user="staff")
    held.refresh_from_db()
    assert held.status == S.SUCCEEDED
    # the approved apply replaced the held journal by what it did: the same changes, once each
    assert journal(held) == planned
    assert RunChange.objects.filter(run=held).count() == len(planned) == held.created + held.updated + held.deleted
    assert (held.created, held.updated, held.deleted) == (2, 1, 18)


def test_approval_journals_the_table_as_it_is_then(integration, customer):
    held = held_run(integration)
    # while held, a hand edit: K0 now differs from the snapshot, K2 is gone already
    Product.objects.filter(customer=customer, sku="K0").update(name="edited")
    Product.objects.filter(customer=customer, sku="K2").delete()
    services.run_review(run=held, approve=True, user="staff")
    held.refresh_from_db()
    j = journal(held)
    assert ("updated", "K0") in j and ("deleted", "K2") not in j
    assert len(j) == held.created + held.updated + held.deleted


def test_rejected_run_has_nothing_to_undo_and_no_journal(integration, customer):
    held = held_run(integration)
    services.run_review(run=held, approve=False, user="staff")
    held.refresh_from_db()
    assert held.status == S.CANCELLED
    assert not RunChange.objects.filter(run=held).exists()  # nothing changed: its journal went
    with pytest.raises(Conflict, match="applied nothing"):
        services.run_undo(run=held)
    assert services.undo_candidate(integration).pk != held.pk


def test_undo_after_an_approved_held_run_restores_the_table(integration, customer):
    held = held_run(integration)
    state = table(customer)
    services.run_review(run=held, approve=True, user="staff")
    assert sorted(table(customer)) == ["K0", "K1", "N1", "N2"]
    assert services.undo_candidate(integration).pk == held.pk
    undo = services.run_undo(run=held, user="staff")
    undo.refresh_from_db()
    assert undo.status == S.SUCCEEDED and (undo.created, undo.updated, undo.deleted) == (18, 1, 2)
    assert table(customer) == state


def test_review_page_lists_what_approval_would_change_with_download(integration, customer, client):
    from tests.support import scenarios

    client.force_login(scenarios.make_superuser())
    held = held_run(integration)
    page = client.get(reverse("admin:integrations_syncrun_review", args=[held.pk])).content.decode()
    changes = page.split('class="held-changes"')[1].split("</div>")[0]
    assert "Approving would change 21 rows" in changes
    base = reverse("admin:integrations_runchange_changelist") + f"?run={held.pk}"
    for n, op in ((2, "created"), (1, "updated"), (18, "deleted")):
        assert f'href="{base}&amp;op__exact={op}">{n} {op}</a>' in changes
    csv_url = reverse("admin:integrations_syncrun_changes_csv", args=[held.pk])
    assert csv_url in changes
    rows = list(csv.reader(io.StringIO(b"".join(client.get(csv_url).streaming_content).decode())))
    assert rows[0][:2] == ["op", "sku"] and len(rows) == 1 + 21
    assert sorted(r[1] for r in rows[1:] if r[0] == "created") == ["N1", "N2"]
    updated = [r for r in rows[1:] if r[0] == "updated"]
    assert updated[0][1] == "K1" and "1.00" in updated[0] and "9.99" in updated[0]
    only = list(csv.reader(io.StringIO(b"".join(client.get(csv_url + "?op=updated").streaming_content).decode())))
    assert len(only) == 2
    listed = client.get(f"{base}&op__exact=deleted")
    assert listed.status_code == 200 and "K19" in listed.content.decode()


# --- a created row journaled by digest (PostgreSQL) --------------------------------------------------


def test_created_rows_by_digest_read_from_the_table_and_undone_only_unchanged(integration, customer):
    from integrations.ingest import journal as j
    from tests.support import db_is_postgres

    sync(integration, [product("A")])
    run = sync(
        integration,
        [product("A", price="1.00"), product("N", attributes={"x": [1, 2]}), product("M", price="3.10")],
        mode="incremental",
    )
    stored = {c.key: c for c in RunChange.objects.filter(run=run)}
    if db_is_postgres():  # only the key and the digest of what the run wrote; `after` read back
        assert stored["N"].after is None and stored["N"].digest is not None
        assert stored["A"].after["price"] == "1.00" and stored["A"].digest is None  # updated: values
    else:
        assert stored["N"].after["attributes"] == {"x": [1, 2]} and stored["N"].digest is None
    assert journal(run)[("created", "N")][1] == {
        "name": "Product N",
        "price": "9.99",
        "currency": "EUR",
        "quantity": 0,
        "active": True,
        "attributes": {"x": [1, 2]},
    }
    # M changed by hand since: the API no longer knows the values the run wrote (PostgreSQL), the
    # undo leaves it (a conflict) and deletes N, which is as the run left it
    Product.objects.filter(customer=customer, sku="M").update(name="edited")
    if db_is_postgres():
        assert journal(run)[("created", "M")][1] is None
    undo = services.run_undo(run=run, user="staff")
    undo.refresh_from_db()
    assert undo.status == S.PARTIAL and (undo.deleted, undo.updated) == (1, 1)
    assert sorted(table(customer)) == ["A", "M"] and table(customer)["M"]["name"] == "edited"
    deleted = RunChange.objects.get(run=undo, key="N")
    assert deleted.op == "deleted" and deleted.before["attributes"] == {"x": [1, 2]}  # the row it removed
    assert RunChange.objects.get(run=undo, key="M").conflict
    assert j.digests(get_target("catalog.product")) == db_is_postgres()


def test_api_and_csv_show_a_created_rows_values(integration, customer):
    from rest_framework.test import APIClient

    _, secret = services.api_key_create(customer=customer, name="k")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    run = sync(integration, [product("A", price="2.50"), product("B")])
    page = api.get(f"/api/v1/runs/{run.pk}/changes/?op=created").json()["results"]
    assert {c["key"]: c["after"]["price"] for c in page} == {"A": "2.50", "B": "9.99"}
    body = b"".join(api.get(f"/api/v1/runs/{run.pk}/changes/?format=csv").streaming_content).decode()
    rows = {r["sku"]: r for r in csv.DictReader(io.StringIO(body))}
    assert rows["A"]["after_price"] == "2.50" and rows["B"]["after_name"] == "Product B"


# --- every key shape and kind of field: a created row's values and its undo -----------------------


SHAPES = {
    "crm.contact": [
        {
            "external_id": 7,
            "email": "a@example.com",
            "signed_up_at": "2024-03-01T10:00:00Z",
            "birth_date": "1990-05-01",
            "score": "12.50",
            "category": "VIP",
        },
        {"external_id": 8, "email": "b@example.com", "signed_up_at": "2024-03-01T10:00:00+02:00"},
    ],
    "crm.order_line": [
        {"order_no": "A", "line": 1, "sku": "S", "quantity": -3, "unit_price": "2.50"},
        {"order_no": "A", "line": 2, "sku": "S", "quantity": 1, "unit_price": "3.1"},
    ],
    "crm.device": [
        {"device_id": "6f1c2b9e-3a44-4b8e-9a51-0c2d3e4f5a6b", "label": "one"},
        {"device_id": "0b7e5c1d-2f3a-4c5b-8d6e-7f8091a2b3c4", "label": "two"},
    ],
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_created_rows_of_every_shape_read_back_and_undone(name, customer):
    target = get_target(name)
    if name == "crm.contact":
        cats = services.integration_create(customer=customer, slug="categories", target="crm.category")
        assert sync(cats, [{"code": "VIP", "name": "V"}]).status == S.SUCCEEDED
    integration = services.integration_create(customer=customer, slug="shape", target=name)
    rows = lambda: sorted(target.owner_rows(customer.pk).values_list(*target.keys, *target.fields))  # noqa: E731
    before = rows()
    run = sync(integration, SHAPES[name])
    assert run.status == S.SUCCEEDED and run.created == 2
    changes = fill_created(target, customer.pk, list(RunChange.objects.filter(run=run)))
    assert all(c.op == "created" and c.after is not None for c in changes)
    assert all(set(c.after) == set(target.fields) for c in changes)
    from tests.support import db_is_postgres

    assert all((c.digest is not None) == db_is_postgres() for c in changes)  # PostgreSQL: by digest
    undo = services.run_undo(run=run, user="staff")
    undo.refresh_from_db()
    assert undo.status == S.SUCCEEDED and undo.deleted == 2, undo.message
    assert rows() == before
