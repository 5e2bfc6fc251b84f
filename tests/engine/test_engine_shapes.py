"""Targets of every key shape and kind of field (SPEC 2 and 12: the crm demo app), through the
services and the task code path, on both databases: string, integer, UUID and composite keys;
model columns outside the schema; staging tables of several targets side by side."""

import io
import json
import uuid
from decimal import Decimal

import pytest

from crm.models import Category, Contact, Device, OrderLine
from integrations import services
from integrations.ingest import staging
from integrations.models import RecordError, SyncRun
from integrations.selectors import held_run_deletions
from integrations.targets import get_target
from tests.support import sync

S = SyncRun.Status
COUNTS = ("received", "created", "updated", "unchanged", "deleted", "failed")


def counts(run, *values):
    return tuple(run.counts[n] for n in COUNTS) == values


def errors(run):
    return list(RecordError.objects.filter(run=run).order_by("seq", "index").values_list("seq", "index", "key", "code"))


@pytest.fixture
def contacts(customer):
    return services.integration_create(customer=customer, slug="contacts", target="crm.contact", max_error_rate=1.0)


@pytest.fixture
def lines(customer):
    return services.integration_create(customer=customer, slug="lines", target="crm.order_line", max_error_rate=1.0)


@pytest.fixture
def devices(customer):
    return services.integration_create(customer=customer, slug="devices", target="crm.device", max_error_rate=1.0)


@pytest.fixture
def categories(customer):
    return services.integration_create(customer=customer, slug="categories", target="crm.category")


def contact(external_id, **extra):
    record = {
        "external_id": external_id,
        "email": f"c{external_id}@example.com",
        "signed_up_at": "2024-03-01T10:00:00Z",
    }
    record.update(extra)
    return record


def line(order_no, no, **extra):
    record = {"order_no": order_no, "line": no, "sku": "SKU-1", "quantity": 1, "unit_price": "2.50"}
    record.update(extra)
    return record


def contact_rows(customer):
    return {c.external_id: c for c in Contact.objects.filter(customer=customer)}


def line_rows(customer):
    return {(o.order_no, o.line): o for o in OrderLine.objects.filter(customer=customer)}


# --- integer keys --------------------------------------------------------------------------------


def test_integer_key_sent_as_json_int_creates_then_is_unchanged(contacts, customer):
    first = sync(contacts, [contact(1042, score="12.50", birth_date="1990-05-01"), contact(7)])
    assert first.status == S.SUCCEEDED and counts(first, 2, 2, 0, 0, 0, 0)
    again = sync(contacts, [contact(1042, score="12.5", birth_date="1990-05-01"), contact(7, email="new@example.com")])
    assert counts(again, 2, 0, 1, 1, 0, 0), again.message
    row = contact_rows(customer)[1042]
    assert (row.score, str(row.birth_date), row.notes) == (Decimal("12.50"), "1990-05-01", "")
    assert contact_rows(customer)[7].email == "new@example.com"


@pytest.mark.parametrize(
    "key, why",
    [
        ("1042", "is a string, not an integer"),
        (True, "is a boolean, not an integer"),
        (10.5, "is a number, not an integer"),
        ("", "is empty"),
        (None, "is missing"),
        (2**63, "is out of the key's range"),
    ],
)
def test_integer_key_of_another_type_is_missing_key(contacts, key, why):
    run = sync(contacts, [contact(1), contact(key)])
    err = RecordError.objects.get(run=run)
    assert (err.code, err.key, err.index) == ("missing_key", None, 1)
    assert why in err.message
    assert run.created == 1


def test_integer_key_errors_duplicates_and_deletes(contacts, customer):
    sync(contacts, [contact(i) for i in range(1, 6)])
    run = sync(
        contacts,
        {"records": [contact(1, email="bad"), contact(2), contact(2)], "deletes": [5]},
        [contact(2, email="x@example.com")],
        mode="full",
    )
    # the bad record's key (an integer) protects its row from snapshot deletion; 5 is listed
    assert errors(run) == [(1, 0, 1, "invalid"), (1, 2, 2, "duplicate_key"), (2, 0, 2, "duplicate_key")]
    assert set(contact_rows(customer)) == {1, 2}
    assert counts(run, 4, 0, 0, 1, 3, 3), run.message


def test_integer_key_from_a_csv_upload(contacts, customer):
    csv = b"external_id,email,signed_up_at,score\n12,a@example.com,2024-01-01T00:00:00Z,1.5\n13,b@example.com,2024-01-01T00:00:00Z,\n"
    run = services.upload_create(integration=contacts, stream=io.BytesIO(csv), filename="c.csv")
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED, run.message
    assert contact_rows(customer)[12].score == Decimal("1.50") and contact_rows(customer)[13].score is None


def test_integer_key_in_the_api_errors(api, contacts, customer):
    run = sync(contacts, [contact(1), contact(2, email="bad")])
    answer = api.get(f"/api/v1/runs/{run.pk}/errors/").json()
    assert [(e["key"], e["code"]) for e in answer["results"]] == [(2, "invalid")]


# --- composite keys ------------------------------------------------------------------------------


def test_composite_key_create_update_unchanged_and_snapshot_delete(lines, customer):
    run = sync(lines, [line("A-1", 1), line("A-1", 2), line("B-7", 1)])
    assert counts(run, 3, 3, 0, 0, 0, 0)
    run = sync(lines, [line("A-1", 1), line("A-1", 2, quantity=5)], mode="full")
    assert counts(run, 2, 0, 1, 1, 1, 0), run.message
    assert set(line_rows(customer)) == {("A-1", 1), ("A-1", 2)}
    assert line_rows(customer)[("A-1", 2)].quantity == 5


def test_composite_key_duplicates_errors_and_deletes(lines, customer):
    sync(lines, [line("A-1", 1), line("A-1", 2), line("A-1", 3), line("B-7", 1)])
    run = sync(
        lines,
        {
            "records": [line("A-1", 1), line("A-1", 1, sku=""), line("A-1", 2, quantity="x")],
            "deletes": [{"order_no": "B-7", "line": 1}, {"line": 3, "order_no": "A-1"}, {"order_no": "A-1", "line": 1}],
        },
        [line("A-1", 1)],
        mode="incremental",
    )
    assert errors(run) == [
        (1, 1, {"order_no": "A-1", "line": 1}, "invalid"),
        (1, 2, {"order_no": "A-1", "line": 2}, "invalid"),
        (2, 0, {"order_no": "A-1", "line": 1}, "duplicate_key"),
    ]
    # a record of the run wins over a listed delete of its key
    assert set(line_rows(customer)) == {("A-1", 1), ("A-1", 2)}
    assert counts(run, 4, 0, 0, 1, 2, 3), run.message


@pytest.mark.parametrize(
    "record",
    [
        {"order_no": "A-1", "sku": "S", "quantity": 1, "unit_price": "1"},
        line("A-1", "2"),
        line("", 1),
        line("A-1", -1),
    ],
)
def test_composite_key_with_a_part_missing_or_of_another_type(lines, record):
    run = sync(lines, [line("A-1", 1), record])
    assert errors(run) == [(1, 1, None, "missing_key")]


def test_composite_key_deletes_must_name_every_part(lines):
    run, _ = services.run_create(integration=lines)
    for deletes in (
        ["A-1"],
        [{"order_no": "A-1"}],
        [{"order_no": "A-1", "line": 1, "x": 2}],
        [{"order_no": "A-1", "line": "1"}],
    ):
        body = json.dumps({"seq": 1, "records": [], "deletes": deletes}).encode()
        with pytest.raises(Exception) as caught:
            services.batch_receive(run=run, seq=1, body=body, content_type="application/json")
        assert "deletes" in str(caught.value.details)


def test_composite_key_held_run_sample_and_csv(lines, customer):
    sync(lines, [line("A-1", i) for i in range(1, 21)])
    held = sync(lines, [line("A-1", 1)], mode="full")
    assert held.status == S.NEEDS_REVIEW
    n, sample = held_run_deletions(held, limit=3)
    assert (n, sample) == (19, ["order_no=A-1, line=2", "order_no=A-1, line=3", "order_no=A-1, line=4"])


# --- UUID keys and columns outside the schema ------------------------------------------------------


def test_uuid_key_any_spelling_is_one_key(devices, customer):
    device = uuid.uuid4()
    run = sync(devices, [{"device_id": str(device), "label": "Till 1"}])
    assert counts(run, 1, 1, 0, 0, 0, 0)
    run = sync(
        devices, [{"device_id": str(device).upper(), "label": "Till 1"}, {"device_id": "not-a-uuid", "label": "x"}]
    )
    assert counts(run, 2, 0, 0, 1, 0, 1) and errors(run) == [(1, 1, None, "missing_key")]
    run = sync(devices, {"records": [], "deletes": [device.hex]}, mode="incremental")
    assert run.deleted == 1 and not Device.objects.exists()


def test_other_columns_take_their_defaults_on_insert_and_keep_their_values(devices, contacts, customer):
    first, second = uuid.uuid4(), uuid.uuid4()
    sync(devices, [{"device_id": str(first), "label": "a"}, {"device_id": str(second), "label": "b"}])
    a, b = Device.objects.get(device_id=first), Device.objects.get(device_id=second)
    assert a.tags == [] and a.registered_at is not None
    assert a.token != b.token  # a callable default is called for each row
    Device.objects.filter(pk=a.pk).update(tags=["kept"])
    sync(devices, [{"device_id": str(first), "label": "renamed"}])
    a2 = Device.objects.get(pk=a.pk)
    assert (a2.label, a2.tags, a2.token, a2.registered_at) == ("renamed", ["kept"], a.token, a.registered_at)

    sync(contacts, [contact(1)])
    Contact.objects.filter(customer=customer).update(notes="called twice")
    sync(contacts, [contact(1, email="changed@example.com")])
    row = contact_rows(customer)[1]
    assert (row.email, row.notes) == ("changed@example.com", "called twice")


def test_string_key_target_beside_others(categories, customer):
    run = sync(categories, [{"code": "VIP", "name": "Very important"}, {"code": " ", "name": "blank"}])
    assert errors(run) == [(1, 1, None, "missing_key")] and run.status == S.FAILED
    categories.max_error_rate = 0.5
    categories.save()
    run = sync(categories, [{"code": "VIP", "name": "Very important"}, {"code": " ", "name": "blank"}])
    assert run.status == S.PARTIAL and list(Category.objects.values_list("code", flat=True)) == ["VIP"]


def test_staging_tables_and_index_names_are_distinct_per_target():
    names = ["catalog.product", "crm.category", "crm.contact", "crm.order_line", "crm.device"]
    models = [staging.stage_model(get_target(n)) for n in names]
    assert len({m._meta.db_table for m in models}) == len(names)
    assert len({m._meta.indexes[0].name for m in models}) == len(names)


def test_composite_and_integer_keys_in_protobuf_deletes(lines, contacts, customer):
    from integrations.proto.testing import encode_batch

    sync(lines, [line("A-1", 1), line("A-1", 2)])
    sync(contacts, [contact(1), contact(2)])
    for integration, deletes in ((lines, [{"order_no": "A-1", "line": 2}]), (contacts, [2])):
        run, _ = services.run_create(integration=integration, mode="incremental")
        services.batch_receive(
            run=run, seq=1, body=encode_batch([], seq=1, deletes=deletes), content_type="application/x-protobuf"
        )
        services.run_complete(run=run)
        run.refresh_from_db()
        assert run.deleted == 1, run.message
    assert set(line_rows(customer)) == {("A-1", 1)} and set(contact_rows(customer)) == {1}


def test_errors_csv_of_a_composite_key_target_has_the_key_columns(lines):
    from integrations.errors_csv import error_csv_rows
    from integrations.selectors import run_errors

    run = sync(lines, [line("A-1", 1), line("A-1", 2, quantity="x")])
    header, row = (line.split(",") for line in "".join(error_csv_rows(run_errors(run))).splitlines())
    cells = dict(zip(header, row))
    assert (cells["order_no"], cells["line"], cells["error_code"]) == ("A-1", "2", "invalid")


# --- references ------------------------------------------------------------------------------------


def test_references_resolve_within_the_customer_only(categories, contacts, customer, other_customer):
    sync(categories, [{"code": "VIP", "name": "Very important"}, {"code": "NEW", "name": "New"}])
    theirs = services.integration_create(customer=other_customer, slug="categories", target="crm.category")
    sync(theirs, [{"code": "GOLD", "name": "Their gold"}])
    run = sync(
        contacts,
        [
            contact(1, category="VIP"),
            contact(2, category="GOLD"),
            contact(3),
            contact(4, category="NOPE"),
            contact(5, category="NEW"),
        ],
    )
    assert run.status == S.PARTIAL and counts(run, 5, 3, 0, 0, 0, 2), run.message
    bad = list(RecordError.objects.filter(run=run).order_by("index"))
    assert [(e.index, e.key, e.code) for e in bad] == [(1, 2, "invalid"), (3, 4, "invalid")]
    assert bad[0].fields == {"category": ["Unknown crm.category key 'GOLD' (no such row of this customer)."]}
    assert bad[0].record["category"] == "GOLD"
    got = {c.external_id: c.category.code if c.category else None for c in contact_rows(customer).values()}
    assert got == {1: "VIP", 3: None, 5: "NEW"}
    # a changed reference is an update; the same one is unchanged
    run = sync(contacts, [contact(1, category="NEW"), contact(3), contact(5, category="NEW")])
    assert counts(run, 3, 0, 1, 2, 0, 0), run.message
    assert contact_rows(customer)[1].category.code == "NEW"


def test_unknown_references_count_in_the_error_policy(categories, contacts, customer):
    sync(categories, [{"code": "VIP", "name": "Very important"}])
    contacts.max_error_rate = 0.4
    contacts.save()
    run = sync(contacts, [contact(1, category="VIP"), contact(2, category="X"), contact(3, category="X" * 40)])
    assert run.status == S.FAILED and counts(run, 3, 0, 0, 0, 0, 2), run.message
    assert not Contact.objects.exists()
    assert RecordError.objects.get(run=run, index=2).fields == {
        "category": [f"Unknown crm.category key {'X' * 40!r} (no such row of this customer)."]
    }


def test_reference_failed_record_protects_its_row_from_the_snapshot(categories, contacts, customer):
    sync(categories, [{"code": "VIP", "name": "Very important"}])
    sync(contacts, [contact(1), contact(2)])
    run = sync(contacts, [contact(1), contact(2, category="GONE")], mode="full")
    assert run.status == S.PARTIAL and run.deleted == 0 and set(contact_rows(customer)) == {1, 2}


def test_snapshot_deleting_a_protected_row_fails_and_applies_nothing(categories, contacts, customer):
    sync(categories, [{"code": "VIP", "name": "Very important"}, {"code": "NEW", "name": "New"}])
    sync(contacts, [contact(1, category="VIP"), contact(2, category="VIP")])
    run = sync(categories, [{"code": "NEW", "name": "Renamed"}], mode="full")
    assert run.status == S.FAILED, run.message
    assert "2 crm.Contact row(s)" in run.message and "crm.Contact.category" in run.message and "PROTECT" in run.message
    assert counts(run, 1, 0, 0, 0, 0, 0)
    assert dict(Category.objects.values_list("code", "name")) == {"VIP": "Very important", "NEW": "New"}
    # explicit deletes are refused alike; once unreferenced, the row goes
    run = sync(categories, {"records": [], "deletes": ["VIP"]}, mode="incremental")
    assert run.status == S.FAILED
    Contact.objects.update(category=None)
    run = sync(categories, {"records": [], "deletes": ["VIP"]}, mode="incremental")
    assert run.status == S.SUCCEEDED and run.deleted == 1


def test_seed_crm_syncs_every_crm_target(transactional_db):
    from django.core.management import call_command

    call_command("seed_crm", stdout=io.StringIO())
    call_command("seed_crm", stdout=io.StringIO())  # again: the same snapshot, all unchanged
    assert Category.objects.count() == 3 and Contact.objects.count() == 50 and OrderLine.objects.exists()
    assert Contact.objects.filter(category__isnull=False).exists()
    assert set(SyncRun.objects.values_list("status", flat=True)) == {S.SUCCEEDED}


@pytest.mark.parametrize("name", ["crm.category", "crm.contact", "crm.device", "crm.order_line"])
def test_the_fast_key_test_agrees_with_parse_key(name):
    target = get_target(name)
    is_key = target.is_key()
    for value in [
        "VIP",
        "",
        "  ",
        "x" * 32,
        "x" * 33,
        "a\x00b",
        5,
        -5,
        True,
        2**63,
        1.5,
        None,
        [1],
        str(uuid.uuid4()),
        uuid.uuid4().hex,
        {"order_no": "A", "line": 1},
        {"order_no": "A"},
    ]:
        assert is_key(value) == (target.parse_key(value) is not None), value
