"""Undo against the simplest model of it (SPEC 13, hypothesis): for random sequences of runs (full
and incremental, listed deletes, failing records, dry runs, held runs approved or rejected),
undoing the applied runs one by one, latest first, brings the whole table back to its state before
each; a row edited by hand after the runs is a conflict, left as the later writer left it, at
every undo. Another customer's rows under the same keys never change. Both databases."""

import json

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun

pytestmark = pytest.mark.slow  # hypothesis: sequences of runs, then undone one by one
S = SyncRun.Status
KEYS = [f"K{i}" for i in range(8)]
VARIANTS = [
    {"name": "Chair", "price": "9.99", "currency": "EUR"},
    {"name": "Chair", "price": "10.50", "currency": "EUR", "quantity": 3, "attributes": {"c": 1}},
    {"name": "Table", "price": "0.00", "currency": "USD", "active": False},
]


def table_of(customer) -> dict:
    return {
        p["sku"]: p
        for p in Product.objects.filter(customer=customer).values(
            "sku", "name", "price", "currency", "quantity", "active", "attributes"
        )
    }


@st.composite
def a_run(draw):
    records = []
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True)):
        if draw(st.integers(0, 9)) == 0:
            records.append({"sku": key, "name": "Bad", "price": "abc", "currency": "EUR"})  # invalid
        else:
            records.append({"sku": key, **VARIANTS[draw(st.integers(0, len(VARIANTS) - 1))]})
    cut = draw(st.integers(0, len(records)))
    return {
        "mode": draw(st.sampled_from(["full", "incremental", "incremental"])),
        "dry_run": draw(st.integers(0, 7)) == 0,
        "batches": [records[:cut], records[cut:]],
        "deletes": draw(st.lists(st.sampled_from(KEYS), max_size=3, unique=True)),
        "approve": draw(st.booleans()),
    }


def send(integration, sc) -> SyncRun:
    run, _ = services.run_create(integration=integration, mode=sc["mode"], dry_run=sc["dry_run"])
    for seq, batch in enumerate(sc["batches"], start=1):
        body = {"seq": seq, "records": batch, "deletes": sc["deletes"] if seq == 1 else []}
        services.batch_receive(run=run, seq=seq, body=json.dumps(body).encode(), content_type="application/json")
    services.run_complete(run=run)
    run.refresh_from_db()
    if run.status == S.NEEDS_REVIEW and not run.dry_run:
        if sc["approve"]:
            services.run_review(run=run, approve=True, user="prop")
        else:
            services.run_review(run=run, approve=False, user="prop")
        run.refresh_from_db()
    return run


def test_undo_restores_each_state_latest_first(transactional_db):
    customer = services.customer_create(slug="prop", name="Property")
    integration = services.integration_create(customer=customer, slug="products", target="catalog.product")
    integration.max_error_rate = 0.2
    integration.save(update_fields=["max_error_rate"])
    bystander = services.customer_create(slug="bystander", name="Bystander")
    Product.objects.bulk_create(
        Product(customer=bystander, sku=k, name="Theirs", price="1.00", currency="GBP") for k in KEYS
    )
    theirs = table_of(bystander)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(
        seed=st.lists(st.sampled_from(KEYS), max_size=6, unique=True),
        runs=st.lists(a_run(), min_size=1, max_size=4),
        edit=st.booleans(),
    )
    def undo_walks_back(seed, runs, edit):
        note(f"seed {seed!r}, runs {runs!r}, edit {edit}")
        SyncRun.objects.filter(integration=integration).delete()
        Product.objects.filter(customer=customer).delete()
        Product.objects.bulk_create(
            Product(customer=customer, sku=k, name="Seed", price="5.00", currency="EUR") for k in seed
        )
        before = []  # (run, the table before it) of every applied run, in order
        for sc in runs:
            state = table_of(customer)
            run = send(integration, sc)
            if run.status in (S.SUCCEEDED, S.PARTIAL) and not run.dry_run:
                before.append((run, state))
            else:
                assert table_of(customer) == state, run.message  # applied nothing
        edited = None
        if edit and before:
            touched = table_of(customer)
            if touched:
                edited = sorted(touched)[0]
                Product.objects.filter(customer=customer, sku=edited).update(name="Edited by hand")
                edited_row = table_of(customer)[edited]
        for run, state in reversed(before):
            assert services.undo_candidate(integration).pk == run.pk
            undo = services.run_undo(run=run, user="prop")
            undo.refresh_from_db()
            assert undo.status in (S.SUCCEEDED, S.PARTIAL), undo.message
            now = table_of(customer)
            if edited is not None:
                assert now.pop(edited) == edited_row  # the conflict row stays as the later writer left it
                state = {k: v for k, v in state.items() if k != edited}
            assert now == state, undo.message
        assert services.undo_candidate(integration) is None
        assert table_of(bystander) == theirs

    undo_walks_back()
