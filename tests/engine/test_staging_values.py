"""What the staging table is written with (COPY text a column at a time on PostgreSQL, multi-row
INSERTs elsewhere) reaches the target unchanged, whatever the characters: tabs, line breaks and
backslashes, COPY's own NULL marker as text, JSON with escapes, NULLs of several column types; and a
batch's span of keys, which lets the apply skip its search for a key staged twice, on both databases."""

from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from crm.models import Contact
from integrations import services
from integrations.models import SyncBatch
from integrations.targets import get_target
from tests.support import product, sync

AWKWARD = [
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\",
    "ends with a backslash\\",
    "snowman \u2603 and \u00e9",
    "quote \" and apostrophe '",
]


def test_awkward_text_and_json_reach_the_target_unchanged(integration, customer):
    records = [
        product(
            f"K{i}\t{i}" if i % 2 else f"K\\{i}",
            name=text,
            attributes={"text": text, "nested": {"list": [text, None, 1.5]}, "empty": None},
        )
        for i, text in enumerate(AWKWARD)
    ]
    run = sync(integration, records)
    assert run.status == "succeeded", run.message
    stored = {p.sku: p for p in Product.objects.filter(customer=customer)}
    for record in records:
        row = stored[record["sku"]]
        assert (row.name, row.attributes) == (record["name"], record["attributes"])
    # and a re-sync of the same values finds every row unchanged
    assert sync(integration, records).unchanged == len(records)


def test_nulls_of_several_types_and_awkward_failed_keys_and_deletes(customer):
    integration = services.integration_create(
        customer=customer, slug="contacts", target="crm.contact", max_error_rate=1
    )
    base = {"signed_up_at": "2024-03-01T10:00:00Z"}
    run = sync(
        integration,
        [
            {"external_id": 1, "email": "a@example.com", "birth_date": None, "score": None, **base},
            {"external_id": 2, "email": "b@example.com", "birth_date": "1990-01-02", "score": "12.50", **base},
            {"external_id": 3, "email": "not an e-mail", **base},  # failed: its key still staged
        ],
        mode="incremental",
    )
    assert run.counts["created"] == 2 and run.counts["failed"] == 1
    rows = {c.external_id: c for c in Contact.objects.filter(customer=customer)}
    assert (rows[1].birth_date, rows[1].score) == (None, None)
    assert rows[2].score == Decimal("12.50")

    products = services.integration_create(customer=customer, slug="p2", target="catalog.product")
    sync(products, [product("x\ty"), product("back\\slash")])
    run = sync(products, {"records": [], "deletes": ["x\ty", "back\\slash"]}, mode="incremental")
    assert run.counts["deleted"] == 2
    assert not Product.objects.filter(customer=customer).exists()


def test_each_batch_keeps_the_span_of_its_keys(integration, customer):
    run = sync(integration, [product("B"), product("A"), product("C", price=-1)], [product("D"), product("E")])
    spans = list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("key_span", flat=True))
    # the failed record's key is staged (it protects its row), so it is inside its batch's span
    assert spans == [["A", "C"], ["D", "E"]]


def test_spans_apart_skip_the_search_for_a_key_staged_twice(integration, customer):
    with CaptureQueriesContext(connection) as apart:
        run = sync(integration, [product("A"), product("B")], [product("C"), product("D")])
    assert run.counts["created"] == 4
    assert not [q for q in apart.captured_queries if "HAVING" in q["sql"]]

    # spans that overlap, without a key staged twice: the search runs and finds nothing
    with CaptureQueriesContext(connection) as overlapping:
        run = sync(integration, [product("A"), product("C")], [product("B"), product("D")])
    assert [q for q in overlapping.captured_queries if "HAVING" in q["sql"]]
    assert (run.counts["unchanged"], run.counts["failed"]) == (4, 0)


def test_a_batch_without_a_span_leaves_the_search_to_the_database(integration, customer):
    from integrations.ingest.apply import mark_cross_batch_duplicates

    integration.max_error_rate = 1
    integration.save()
    run, _ = services.run_create(integration=integration)
    for seq, sku in ((1, "A"), (2, "A")):
        services.batch_receive(
            run=run,
            seq=seq,
            body=f'{{"seq": {seq}, "records": [{{"sku": "{sku}", "name": "n", "price": 1, "currency": "EUR"}}]}}'.encode(),
            content_type="application/json",
        )
    services.run_complete(run=run)
    run.refresh_from_db()
    assert run.counts["failed"] == 1  # found with spans: [A, A] and [A, A] overlap

    # a batch validated before spans were kept (None) is never taken as apart
    target = get_target("catalog.product")
    SyncBatch.objects.filter(run=run).update(key_span=None)
    with CaptureQueriesContext(connection) as searched:
        mark_cross_batch_duplicates(run, target)
    assert [q for q in searched.captured_queries if "HAVING" in q["sql"]]


def test_key_span_of_each_key_kind():
    product_target = get_target("catalog.product")
    assert product_target.key_span([]) is None
    assert product_target.key_span(["b", "a", "c"]) == ["a", "c"]
    lines = get_target("crm.order_line")
    assert lines.key_span([("O2", 1), ("O1", 7), ("O1", 2)]) == [["O1", 2], ["O2", 1]]
    import uuid

    devices = get_target("crm.device")
    low, high = uuid.UUID(int=1), uuid.UUID(int=2**127)
    assert devices.key_span([high, low]) == [str(low), str(high)]
