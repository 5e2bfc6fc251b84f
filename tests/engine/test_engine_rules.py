"""SPEC section 3, rule by rule, through the services and the task code path, on both databases."""

from decimal import Decimal

import pytest

from catalog.models import Product
from integrations import services
from integrations.ingest import staging
from integrations.models import RecordError, SyncRun
from integrations.targets import get_target
from tests.support import product, sync

S = SyncRun.Status


def rows(customer):
    return {p.sku: p for p in Product.objects.filter(customer=customer)}


def errors(run):
    return list(RecordError.objects.filter(run=run).order_by("seq", "index").values("seq", "index", "key", "code"))


def test_first_load_creates_and_counts(integration, customer):
    run = sync(integration, [product("A"), product("B", quantity=3, active=False, attributes={"c": 1})])
    assert run.status == S.SUCCEEDED
    assert run.counts == {"received": 2, "created": 2, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    b = rows(customer)["B"]
    assert (b.quantity, b.active, b.attributes, b.price) == (3, False, {"c": 1}, Decimal("9.99"))
    assert not staging.staged(get_target("catalog.product"), run.pk).exists()  # staging cleaned after the end


def test_unchanged_records_are_not_rewritten(integration, customer):
    sync(integration, [product("A"), product("B")])
    before = rows(customer)["A"].updated_at
    run = sync(integration, [product("A"), product("B", price=12)])
    assert (run.created, run.updated, run.unchanged) == (0, 1, 1)
    assert rows(customer)["A"].updated_at == before
    assert rows(customer)["B"].price == Decimal("12.00")


def test_price_as_number_or_string_same_value_is_unchanged(integration, customer):
    sync(integration, [product("A", price="10.50")])
    run = sync(integration, [product("A", price=10.5)])
    assert run.unchanged == 1


@pytest.mark.parametrize(
    "record, code, key, field",
    [
        ("not an object", "parse_error", None, None),
        ([1, 2], "parse_error", None, None),
        ({"name": "x", "price": 1, "currency": "EUR"}, "missing_key", None, None),
        ({"sku": 5, "name": "x", "price": 1, "currency": "EUR"}, "missing_key", None, None),
        ({"sku": "", "name": "x", "price": 1, "currency": "EUR"}, "missing_key", None, None),
        (product("K", price=-1), "invalid", "K", "price"),
        (product("K", price="1.234"), "invalid", "K", "price"),
        (product("K", price="NaN"), "invalid", "K", "price"),
        (product("K", price=10_000_000_000), "invalid", "K", "price"),
        (product("K", currency="eur"), "invalid", "K", "currency"),
        (product("K", quantity=1.5), "invalid", "K", "quantity"),
        (product("K", quantity=-1), "invalid", "K", "quantity"),
        (product("K", quantity=2_147_483_648), "invalid", "K", "quantity"),
        (product("K", active="yes"), "invalid", "K", "active"),
        (product("K", attributes=[1]), "invalid", "K", "attributes"),
        (product("K", name=""), "invalid", "K", "name"),
        ({"sku": "K", "price": 1, "currency": "EUR"}, "invalid", "K", "name"),
        (product("K" * 65), "invalid", "K" * 65, "sku"),
        (product("K", colour="red"), "unknown_field", "K", "colour"),
    ],
)
def test_each_error_code(integration, record, code, key, field):
    integration.max_error_rate = 1.0
    integration.save()
    run = sync(integration, [product("OK"), record])
    err = RecordError.objects.get(run=run)
    assert (err.seq, err.index, err.code, err.key) == (1, 1, code, key)
    if field:
        assert field in err.fields and err.fields[field]
    assert err.record == record
    assert run.counts["failed"] == 1 and run.created == 1


def test_quantity_one_point_zero_is_one(integration, customer):
    run = sync(integration, [product("A", quantity=1.0)])
    assert run.status == S.SUCCEEDED and rows(customer)["A"].quantity == 1


def test_invalid_lists_every_bad_field(integration):
    integration.max_error_rate = 1
    integration.save()
    run = sync(integration, [{"sku": "A", "price": "x", "currency": "e", "quantity": 1.5}])
    err = RecordError.objects.get(run=run)
    assert err.code == "invalid"
    assert set(err.fields) == {"name", "price", "currency", "quantity"}


def test_duplicate_key_first_stays_within_and_across_batches(integration, customer):
    integration.max_error_rate = 1
    integration.save()
    run = sync(integration, [product("A", name="first"), product("A", name="second")], [product("A", name="third")])
    assert errors(run) == [
        {"seq": 1, "index": 1, "key": "A", "code": "duplicate_key"},
        {"seq": 2, "index": 0, "key": "A", "code": "duplicate_key"},
    ]
    assert rows(customer)["A"].name == "first"
    assert run.counts == {"received": 3, "created": 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 2}


def test_error_policy_strict_fails_and_applies_nothing(integration, customer):
    run = sync(integration, [product("A"), product("B", price=-1)])
    assert run.status == S.FAILED
    assert run.counts == {"received": 2, "created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 1}
    assert rows(customer) == {}
    assert "max_error_rate" in run.message


def test_error_policy_equal_rate_is_within_policy(integration, customer):
    integration.max_error_rate = 0.5
    integration.save()
    run = sync(integration, [product("A"), product("B", price=-1)])
    assert run.status == S.PARTIAL
    assert set(rows(customer)) == {"A"}
    assert "failed" in run.message


def test_error_policy_comes_before_the_guard(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    run = sync(integration, [product("P0", price=-1)])  # would delete 19 rows, but fails first
    assert run.status == S.FAILED
    assert len(rows(customer)) == 20


def test_explicit_deletes_in_incremental_mode(integration, customer):
    sync(integration, [product("A"), product("B"), product("C")])
    run = sync(integration, {"records": [product("D")], "deletes": ["A", "missing"]}, mode="incremental")
    assert run.status == S.SUCCEEDED
    assert set(rows(customer)) == {"B", "C", "D"}
    assert run.counts == {"received": 1, "created": 1, "updated": 0, "unchanged": 0, "deleted": 1, "failed": 0}


def test_incremental_run_deletes_nothing_else(integration, customer):
    sync(integration, [product("A"), product("B")])
    run = sync(integration, [product("A")], mode="incremental")
    assert run.deleted == 0 and set(rows(customer)) == {"A", "B"}


def test_snapshot_deletion_in_full_mode(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(10)])
    run = sync(integration, [product(f"P{i}") for i in range(1, 10)])
    assert run.status == S.SUCCEEDED and run.deleted == 1
    assert "P0" not in rows(customer)


def test_failed_record_with_key_protects_its_row(integration, customer):
    integration.max_error_rate = 0.5
    integration.save()
    sync(integration, [product("A"), product("B")])
    run = sync(integration, [product("A"), product("B", price=-5)])
    assert run.status == S.PARTIAL
    assert set(rows(customer)) == {"A", "B"} and run.deleted == 0


def test_failed_record_without_key_skips_snapshot_deletion(integration, customer):
    integration.max_error_rate = 0.5
    integration.save()
    sync(integration, [product("A"), product("B"), product("C")])
    run = sync(integration, [product("A"), {"name": "no key"}], {"records": [], "deletes": ["C"]})
    assert run.status == S.PARTIAL
    assert set(rows(customer)) == {"A", "B"}  # B kept: snapshot deletion skipped; C was listed explicitly
    assert "snapshot deletion skipped" in run.message.lower()


def test_deletion_guard_holds_then_approve_applies(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    run = sync(integration, [product(f"P{i}") for i in range(5)] + [product("NEW")])
    assert run.status == S.NEEDS_REVIEW
    assert run.counts == {"received": 6, "created": 1, "updated": 0, "unchanged": 5, "deleted": 15, "failed": 0}
    assert len(rows(customer)) == 20  # nothing applied
    services.run_review(run=run, approve=True, user="staff")
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED and run.deleted == 15 and run.created == 1
    assert set(rows(customer)) == {f"P{i}" for i in range(5)} | {"NEW"}


def test_deletion_guard_reject_cancels(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    run = sync(integration, [product("P0")])
    services.run_review(run=run, approve=False, user="staff")
    run.refresh_from_db()
    assert run.status == S.CANCELLED and len(rows(customer)) == 20


def test_guard_needs_more_than_ten_rows(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(12)])
    run = sync(integration, [product(f"P{i}") for i in range(2)])  # deletes 10 of 12: not more than 10
    assert run.status == S.SUCCEEDED and run.deleted == 10


def test_guard_trips_when_every_row_would_go(integration, customer):
    sync(integration, [product("A"), product("B")])
    run = sync(integration, [product("C")])
    assert run.status == S.NEEDS_REVIEW


def test_explicit_deletes_do_not_count_for_the_guard(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    keep = [product(f"P{i}") for i in range(10, 20)]
    run = sync(integration, {"records": keep, "deletes": [f"P{i}" for i in range(10)]})
    assert run.status == S.SUCCEEDED and run.deleted == 10


def test_empty_snapshot_is_held(integration, customer):
    sync(integration, [product("A"), product("B")])
    run = sync(integration)
    assert run.status == S.NEEDS_REVIEW and run.received == 0 and run.deleted == 2
    services.run_review(run=run, approve=True)
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED and rows(customer) == {}


def test_empty_snapshot_of_empty_table_succeeds(integration):
    run = sync(integration)
    assert run.status == S.SUCCEEDED and run.counts["received"] == 0


def test_dry_run_counts_without_applying(integration, customer):
    sync(integration, [product("A"), product("B")])
    run = sync(integration, [product("A", price=1), product("C")], dry_run=True)
    assert run.status == S.SUCCEEDED
    assert run.counts == {"received": 2, "created": 1, "updated": 1, "unchanged": 0, "deleted": 1, "failed": 0}
    assert set(rows(customer)) == {"A", "B"} and rows(customer)["A"].price == Decimal("9.99")


def test_held_dry_run_cannot_be_approved(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    run = sync(integration, [product("P1")], dry_run=True)
    assert run.status == S.NEEDS_REVIEW
    with pytest.raises(Exception, match="dry run"):
        services.run_review(run=run, approve=True)


def test_counts_invariant(integration):
    integration.max_error_rate = 1
    integration.save()
    sync(integration, [product("A"), product("B")])
    run = sync(integration, [product("A"), product("B", price=2), product("C"), product("C"), {"x": 1}, 7])
    c = run.counts
    assert c["received"] == c["created"] + c["updated"] + c["unchanged"] + c["failed"] == 6


def test_other_customers_rows_are_never_touched(integration, customer, other_customer):
    other = services.integration_create(customer=other_customer, slug="products", target="catalog.product")
    sync(other, [product("A", name="theirs"), product("Z")])
    sync(integration, [product("A", name="ours")])
    sync(integration, [product("B")] * 1)  # full snapshot: deletes our A only... held? 1 of 1 = every row
    theirs = rows(other_customer)
    assert set(theirs) == {"A", "Z"} and theirs["A"].name == "theirs"


def test_field_map_and_adapter(customer):
    integration = services.integration_create(
        customer=customer,
        slug="erp",
        target="catalog.product",
        adapter="cents-and-flags",
        field_map={"Code": "sku", "Title": "name", "Legacy": None},
    )
    run = sync(
        integration, [{"Code": "A", "Title": "T", "price_cents": 1250, "currency": "EUR", "active": "N", "Legacy": "x"}]
    )
    assert run.status == S.SUCCEEDED, run.message
    a = rows(customer)["A"]
    assert (a.name, a.price, a.active) == ("T", Decimal("12.50"), False)


def test_adapter_rejection_is_a_record_error(customer):
    integration = services.integration_create(
        customer=customer, slug="erp", target="catalog.product", adapter="cents-and-flags", max_error_rate=1
    )
    run = sync(integration, [product("A", active="maybe")])
    err = RecordError.objects.get(run=run)
    assert err.code == "invalid" and "Y nor N" in err.message


def test_nul_characters_are_invalid_not_a_crash(integration, customer):
    integration.max_error_rate = 1
    integration.save()
    run = sync(
        integration,
        [product("A"), product("B", name="bad\u0000name"), product("C", attributes={"k\u0000": 1}), product("D\u0000")],
    )
    assert run.status == S.PARTIAL
    codes = {e["index"]: e["code"] for e in errors(run)}
    assert codes == {1: "invalid", 2: "invalid", 3: "invalid"}
    assert set(rows(customer)) == {"A"}
    bad = RecordError.objects.get(run=run, index=1)
    assert bad.key == "B" and "name" in bad.fields


def test_a_number_beyond_range_is_an_invalid_record(integration, customer):
    """1e400 is read exactly (no float on the way): the price check refuses it, with the key."""
    import json as _json

    integration.max_error_rate = 0.5
    integration.save()
    run, _ = services.run_create(integration=integration, mode="incremental")
    body = (
        '{"seq": 1, "records": [' + _json.dumps(product("A")) + ', {"sku": "B", "name": "b", "price": 1e400, '
        '"currency": "EUR"}]}'
    ).encode()
    services.batch_receive(run=run, seq=1, body=body, content_type="application/json")
    services.run_complete(run=run)
    run.refresh_from_db()
    assert run.status == S.PARTIAL, run.message
    assert [(e["index"], e["code"], e["key"]) for e in errors(run)] == [(1, "invalid", "B")]
    assert set(rows(customer)) == {"A"}


def test_json_same_value_in_other_key_order_or_number_form_is_unchanged(integration, customer):
    """SQLite keeps JSON as text: a row written elsewhere with other key order, spacing or 2.0 for 2
    holds the same value, so a re-sync leaves it unchanged; a changed value is an update."""
    sync(
        integration, [product("A", attributes={"a": 2, "b": [1, {"y": 1, "x": 0}]}), product("B", attributes={"k": 1})]
    )
    Product.objects.filter(customer=customer, sku="A").update(attributes={"b": [1.0, {"x": 0, "y": 1}], "a": 2.0})
    run = sync(
        integration, [product("A", attributes={"a": 2, "b": [1, {"y": 1, "x": 0}]}), product("B", attributes={"k": 2})]
    )
    assert (run.created, run.updated, run.unchanged) == (0, 1, 1)
    assert rows(customer)["B"].attributes == {"k": 2}
