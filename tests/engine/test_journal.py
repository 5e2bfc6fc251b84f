"""The change journal of a run (SPEC 13): what it holds, and the API that reads it."""

import csv
import io
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalog.models import Product
from integrations import services
from integrations.ingest.journal import fill_created
from integrations.models import RunChange, SyncRun
from integrations.targets import get_target
from tests.support import product, sync

S = SyncRun.Status


def journal(run):
    # as the API reads it: a created row journaled by digest (PostgreSQL) gets `after` from the table
    changes = fill_created(
        get_target(run.integration.target), run.integration.customer_id, list(RunChange.objects.filter(run=run))
    )
    return {(c.op, c.key): (c.before, c.after) for c in changes}


def seed(integration, n=4):
    run = sync(integration, [product(f"K{i}", price=f"{i}.50") for i in range(n)])
    assert run.status == S.SUCCEEDED
    return run


def test_created_updated_deleted_unchanged(integration):
    first = seed(integration)
    assert {op for op, _ in journal(first)} == {"created"}
    assert journal(first)[("created", "K1")] == (
        None,
        {"name": "Product K1", "price": "1.50", "currency": "EUR", "quantity": 0, "active": True, "attributes": {}},
    )
    # K0 unchanged, K1 updated, K2/K3 absent from the full snapshot: deleted, N1 new
    run = sync(integration, [product("K0", price="0.50"), product("K1", price="7.00"), product("N1")], mode="full")
    assert (run.created, run.updated, run.unchanged, run.deleted) == (1, 1, 1, 2)
    j = journal(run)
    assert set(j) == {("created", "N1"), ("updated", "K1"), ("deleted", "K2"), ("deleted", "K3")}
    before, after = j[("updated", "K1")]
    assert before["price"] == "1.50" and after["price"] == "7.00" and after["name"] == "Product K1"
    assert j[("deleted", "K3")][0]["price"] == "3.50" and j[("deleted", "K3")][1] is None


def test_explicit_deletes_only_those_that_hit_a_row(integration):
    seed(integration)
    run = sync(
        integration, {"records": [product("K0", price="0.50")], "deletes": ["K1", "NOPE", "K0"]}, mode="incremental"
    )
    assert run.deleted == 1
    assert set(journal(run)) == {("deleted", "K1")}  # K0 is in the run: its record wins; NOPE hits nothing


def test_dry_run_journal_is_what_it_would_change(integration):
    seed(integration)
    run = sync(integration, [product("K0", price="9.00"), product("N1")], mode="full", dry_run=True)
    assert run.status == S.SUCCEEDED
    assert {op: k for op, k in journal(run)} and set(journal(run)) == {
        ("updated", "K0"),
        ("created", "N1"),
        ("deleted", "K1"),
        ("deleted", "K2"),
        ("deleted", "K3"),
    }
    assert Product.objects.get(sku="K0").price == Decimal("0.50")  # nothing applied


def test_failed_runs_journal_nothing_held_runs_what_approval_would_do(integration):
    seed(integration, n=20)
    held = sync(integration, [product("K0")], mode="full")
    assert held.status == S.NEEDS_REVIEW
    assert sum(1 for op, _ in journal(held) if op == "deleted") == 19  # what approval would change
    services.run_review(run=held, approve=True, user="staff")
    held.refresh_from_db()
    assert held.status == S.SUCCEEDED
    assert sum(1 for op, _ in journal(held) if op == "deleted") == 19 == held.deleted
    bad = sync(integration, [{"sku": "X"}], mode="incremental")
    assert bad.status == S.FAILED and not RunChange.objects.filter(run=bad).exists()


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api(customer):
    _, secret = services.api_key_create(customer=customer, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_api_pages_filter_csv_and_changes_url(integration, api):
    seed(integration)
    run = sync(integration, [product("K0", price="0.50"), product("K1", price="7.00"), product("N1")], mode="full")
    body = api.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["changes_url"].endswith(f"/api/v1/runs/{run.pk}/changes/")
    page = api.get(f"/api/v1/runs/{run.pk}/changes/?page_size=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    updated = api.get(f"/api/v1/runs/{run.pk}/changes/?op=updated").json()["results"]
    assert updated == [{"op": "updated", "key": "K1", "before": {"price": "1.50"}, "after": {"price": "7.00"}}]
    created = api.get(f"/api/v1/runs/{run.pk}/changes/?op=created").json()["results"]
    assert created[0]["key"] == "N1" and created[0]["before"] is None and created[0]["after"]["price"] == "9.99"
    assert api.get(f"/api/v1/runs/{run.pk}/changes/?op=nope").status_code == 400
    response = api.get(f"/api/v1/runs/{run.pk}/changes/?format=csv&op=deleted")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["sku"] for r in rows) == ["K2", "K3"]
    assert (
        {r["op"] for r in rows} == {"deleted"} and rows[0]["before_currency"] == "EUR" and rows[0]["after_name"] == ""
    )


def test_api_another_customers_run_is_404(integration, other_customer):
    run = seed(integration)
    _, secret = services.api_key_create(customer=other_customer, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/api/v1/runs/{run.pk}/changes/").status_code == 404
    assert client.get(f"/api/v1/runs/{run.pk}/changes/?format=csv").status_code == 404


def test_reports_link_the_changes(integration, settings):
    from django.core import mail

    from integrations.selectors import run_representation

    integration.max_error_rate = 0.9
    integration.save()
    run = sync(integration, [product("A"), {"sku": "B"}])
    assert run.status == S.PARTIAL
    assert run_representation(run)["changes_url"].endswith(f"/api/v1/runs/{run.pk}/changes/")  # the webhook payload
    report = [m for m in mail.outbox if str(run.pk) in m.body][0]
    assert f"/api/v1/runs/{run.pk}/changes/?format=csv" in report.body
