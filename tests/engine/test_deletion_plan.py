"""Issue 11 point 1: one deletion plan (ingest.deletions.DeletionPlan). What the admin says approving
a held run would delete (the count, the sample, the downloadable keys) is what approval deletes, and
a dry run reports what the same run deletes for real; reading the plan creates no table (point 8)."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Product
from crm.models import OrderLine
from integrations import selectors, services
from integrations.ingest import staging
from integrations.ingest.deletions import DeletionPlan
from integrations.models import SyncRun
from integrations.targets import get_target
from tests.support import product, sync

S = SyncRun.Status
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def products(customer):
    return services.integration_create(customer=customer, slug="products", target="catalog.product", max_error_rate=0.5)


@pytest.fixture
def lines(customer):
    return services.integration_create(customer=customer, slug="lines", target="crm.order_line", max_error_rate=0.5)


@pytest.fixture
def staff(client, transactional_db):
    user = get_user_model().objects.create(username="boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def line(order_no, no, **extra):
    return {"order_no": order_no, "line": no, "sku": "SKU-1", "quantity": 1, "unit_price": "2.50", **extra}


def held_products_run(products):
    """30 rows, then a full snapshot that keeps 10 (one changed), fails one record with a readable
    key (which protects its row), lists a delete of one of its own records (the record wins) and
    of a row it leaves out: 18 rows by the snapshot, 1 by the listed delete, above the guard."""
    sync(products, [product(f"SKU-{i:03d}") for i in range(30)])
    records = [product(f"SKU-{i:03d}") for i in range(10)] + [product("SKU-010", price="-1")]
    records[3]["name"] = "renamed"
    held = sync(products, {"records": records, "deletes": ["SKU-005", "SKU-011", "SKU-999"]}, mode="full")
    assert held.status == S.NEEDS_REVIEW, held.message
    return held


def csv_keys(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))[1:]


def test_what_the_admin_says_approval_deletes_is_what_it_deletes(staff, products, customer):
    held = held_products_run(products)
    expected = {f"SKU-{i:03d}" for i in range(11, 30)}

    n, sample = selectors.held_run_deletions(held, limit=5)
    review = staff.get(reverse("admin:integrations_syncrun_review", args=[held.pk]))
    shown = review.context["items"][0]["would_delete"]
    keys = csv_keys(staff.get(reverse("admin:integrations_syncrun_deletions_csv", args=[held.pk])))
    assert n == shown == len(keys) == held.deleted == len(expected) == 19
    assert sample == sorted(expected)[:5] and {k for [k] in keys} == expected

    before = set(Product.objects.filter(customer=customer).values_list("sku", flat=True))
    staff.post(
        reverse("admin:integrations_syncrun_review", args=[held.pk]), {"decision": "approve", "confirm_delete": "yes"}
    )
    held.refresh_from_db()
    after = set(Product.objects.filter(customer=customer).values_list("sku", flat=True))
    assert held.status == S.PARTIAL, held.message
    assert held.deleted == n and before - after == expected


def test_composite_keys_the_same(staff, lines, customer):
    sync(lines, [line("A-1", i) for i in range(1, 21)])
    held = sync(
        lines,
        {"records": [line("A-1", 1), line("A-1", 2, unit_price="x")], "deletes": [{"order_no": "A-1", "line": 3}]},
        mode="full",
    )
    assert held.status == S.NEEDS_REVIEW, held.message
    n, sample = selectors.held_run_deletions(held, limit=2)
    keys = csv_keys(staff.get(reverse("admin:integrations_syncrun_deletions_csv", args=[held.pk])))
    assert n == len(keys) == 18 and sample == ["order_no=A-1, line=3", "order_no=A-1, line=4"]
    services.run_review(run=held, approve=True, user="boss")
    held.refresh_from_db()
    assert held.deleted == n
    assert set(OrderLine.objects.filter(customer=customer).values_list("order_no", "line")) == {("A-1", 1), ("A-1", 2)}


def test_a_dry_run_reports_what_the_run_deletes(products, customer):
    sync(products, [product(f"SKU-{i:03d}") for i in range(30)])
    body = {"records": [product(f"SKU-{i:03d}") for i in range(27)], "deletes": ["SKU-001", "SKU-027"]}
    dry = sync(products, body, mode="full", dry_run=True)
    assert dry.status == S.SUCCEEDED and Product.objects.filter(customer=customer).count() == 30
    real = sync(products, body, mode="full")
    assert (dry.deleted, real.deleted) == (3, 3)  # 28 and 29 by the snapshot, 27 listed
    assert set(Product.objects.filter(customer=customer).values_list("sku", flat=True)) == {
        f"SKU-{i:03d}" for i in range(27)
    }


def test_reading_the_plan_runs_no_ddl(staff, products, monkeypatch):
    held = held_products_run(products)

    def refuse(target):
        raise AssertionError("a read must not create the staging table")

    monkeypatch.setattr(staging, "ensure_table", refuse)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.held_run_deletions(held)[0] == 19
        keys = csv_keys(staff.get(reverse("admin:integrations_syncrun_deletions_csv", args=[held.pk])))
        staff.get(reverse("admin:integrations_syncrun_change", args=[held.pk]))
    assert len(keys) == 19
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]


def test_without_a_staging_table_the_plan_is_that_of_an_empty_one(products, customer, monkeypatch):
    """A run whose target's table is not there (the target changed since) staged nothing the plan
    could read: its snapshot keeps no row, as the same plan over an empty table says."""
    held = held_products_run(products)
    target = get_target("catalog.product")
    with_table = DeletionPlan.of(held, target, customer.pk)
    monkeypatch.setattr(staging, "table_exists", lambda target: False)
    without = DeletionPlan.of(held, target, customer.pk)
    assert (with_table.explicit_count, with_table.snapshot_count) == (1, 18)
    assert (without.explicit_count, without.snapshot_count, without.count()) == (0, 30, 30)
    assert without.keys(3) == [("SKU-000",), ("SKU-001",), ("SKU-002",)]
