"""Protobuf in columns (issue 14 point 1): the client sends each field's values as one typed array,
and the server converts them a column at a time. Behaviour, not timing: the columnar and the row
layouts of the same records decode to the same records and validate to the same results, errors
included; strict types, exact decimals, NaN refused per record, keys of every shape in
delete_keys, and an unknown field number anywhere in the envelope is a 400."""

import datetime
import math
from decimal import Decimal

import pytest
from integrations_client.encoding import BatchEncoder, decode_protobuf

from catalog.models import Product
from integrations.formats import MediaType
from integrations.ingest import decode
from integrations.ingest.validate import Validator
from integrations.models import RecordError, SyncRun
from integrations.proto import batch_pb2, codec, testing
from integrations.targets import get_target
from tests.support import product
from tests.support.api import API, PROTOBUF_TYPE, error_of, open_run, post_batch


def columns_body(recs, *, seq=1, deletes=()) -> bytes:
    encoder = BatchEncoder(compress=False)
    for record in recs:
        encoder.add(record)
    return encoder.finish(seq, deletes).body


def rows_body(recs, *, seq=1, deletes=()) -> bytes:
    return testing.encode_batch(recs, seq=seq, deletes=deletes)


def layout(body: bytes) -> str:
    return "columns" if batch_pb2.Batch.FromString(body).HasField("columns") else "rows"


# every kind of value, absent fields, nulls, and columns of mixed kinds
ODD = [
    {
        "sku": "A",
        "name": "Chair",
        "price": Decimal("49.90"),
        "currency": "EUR",
        "quantity": 3,
        "active": True,
        "attributes": {
            "color": "red",
            "dims": [1, 2.5, None],
            "nested": {"x": False},
            "empty": {},
            "d": Decimal("1.50"),
        },
    },
    {"sku": "B", "price": 9.99, "quantity": -(2**63), "huge": 2**64, "gone": None, "when": datetime.date(2026, 1, 2)},
    {"currency": "USD", "attributes": None, "quantity": 1.5},
    {"attributes": [1, "two", {"3": 4}], "huge": 7, "flag": True},
    {},
    {"sku": "C", "attributes": {"nan": float("nan")}, "price": float("inf")},
    {"sku": "D", "attributes": {"big": 2**70, True: "key"}},
]


def same(a, b) -> bool:
    """Equality in which NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_the_client_sends_columns_and_both_layouts_decode_alike():
    columns, rows = columns_body(ODD, deletes=["K", 5]), rows_body(ODD, deletes=["K", 5])
    assert (layout(columns), layout(rows)) == ("columns", "rows")
    seq, decoded, deletes = testing.decode_batch(columns)
    assert (seq, deletes) == (1, ["K", 5])
    assert same(decoded, testing.decode_batch(rows)[1])
    assert decoded[0]["price"] == "49.90" and decoded[0]["attributes"]["d"] == "1.50"  # exact, as text
    assert decoded[1]["huge"] == str(2**64) and decoded[3]["huge"] == 7
    assert same(decoded, decode_protobuf(columns)[1])  # the client reads its own batches back
    assert codec.summarize_batch(columns) == (1, len(ODD), ["K", 5])


def test_a_typed_column_holds_nulls_and_absent_fields():
    recs = [{"sku": "A", "name": "a"}, {"sku": "B", "name": None}, {"sku": "C"}]
    body = columns_body(recs)
    column = batch_pb2.Batch.FromString(body).columns.columns[1]
    assert list(column.strings) == ["a", "", ""] and list(column.nulls) == [1] and list(column.absent) == [2]
    assert testing.decode_batch(body)[1] == recs


CASES = [
    product("OK-1", attributes={"w": 1.5, "tags": ["a"]}),
    product("OK-2", price=Decimal("12.50"), quantity=7, active=False),
    product("NAN-1", price=float("nan")),
    product("INF-1", attributes={"w": [1.5, {"deep": float("inf")}]}),
    product("TYPE-1", quantity="3"),  # strict: a string is no number
    product("TYPE-2", active=1),
    product("CENTS-1", price=Decimal("12.345")),
    product("   "),  # a blank key
    product("OK-1"),  # the same key again
    {"sku": "NONAME", "price": "1.00", "currency": "EUR"},
    product("UNKNOWN-1", colour="red"),
    product("NUL-1", name="a\x00b"),
    product("BIG-1", attributes={"n": 2**70}),
]


def results(body: bytes):
    target = get_target("catalog.product")
    result = Validator(target).validate(decode.decode_batch(body, MediaType.PROTOBUF))
    valid = [(i, key, target.to_data(rec)) for i, key, rec in result.valid]
    problems = [(p.index, p.key, p.code, p.message, p.fields) for p in result.problems]
    return valid, problems, result.received


@pytest.mark.parametrize("recs", [CASES, [c for c in CASES if c["sku"].startswith("OK")]], ids=["errors", "clean"])
def test_both_layouts_validate_alike_errors_included(recs):
    columns, rows = results(columns_body(recs)), results(rows_body(recs))
    assert columns == rows
    valid, problems, received = columns
    assert received == len(recs)
    if recs is CASES:
        codes = {CASES[i]["sku"]: code for i, _, code, _, _ in problems}
        assert codes == {
            "NAN-1": "invalid",
            "INF-1": "invalid",
            "TYPE-1": "invalid",
            "TYPE-2": "invalid",
            "CENTS-1": "invalid",
            "   ": "missing_key",
            "OK-1": "duplicate_key",
            "NONAME": "invalid",
            "UNKNOWN-1": "unknown_field",
            "NUL-1": "invalid",
        }
        assert dict((i, f) for i, _, _, _, f in problems)[2] == {"price": ["Not a finite number."]}
    assert {v[1] for v in valid} >= {"OK-1", "OK-2"}
    assert dict((k, d) for _, k, d in valid)["OK-2"]["price"] == "12.50"


def test_a_fast_column_batch_gives_the_schema_structs():
    target = get_target("catalog.product")
    recs = [product(f"S-{i}", price=Decimal(f"{i}.25"), quantity=i) for i in range(50)]
    body = columns_body(recs)
    assert len(body) < 0.8 * len(rows_body(recs))
    batch = decode.decode_batch(body, MediaType.PROTOBUF)
    assert batch.columns is not None and batch.records is None  # converted a column at a time
    result = Validator(target).validate(batch)
    assert not result.problems and len(result.valid) == 50
    assert all(type(rec) is target.schema for _, _, rec in result.valid)
    assert result.valid[3][2].price == Decimal("3.25") and result.valid[3][2].quantity == 3


def test_a_free_form_value_naming_a_key_twice_is_a_parse_error():
    message = batch_pb2.Batch.FromString(
        columns_body([product("A", attributes={"a": 1}), product("B", attributes={"b": 2})])
    )
    index = list(message.fields).index("attributes")
    message.columns.columns[index].json = '[{"a":1,"a":2},{"b":2}]'
    _, problems, _ = results(message.SerializeToString())
    assert [(i, code) for i, _, code, _, _ in problems] == [(0, "parse_error")]
    assert "'a' more than once" in problems[0][3]


def test_deletes_of_every_key_shape_travel_with_columns():
    keys = ["OLD-1", 1042, {"order_no": "A-1", "line": 2}]
    body = columns_body([product("A")], deletes=keys)
    assert testing.decode_batch(body)[2] == keys
    assert codec.summarize_batch(body)[2] == keys


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["batch", "columns", "column"])
def test_an_unknown_field_number_anywhere_in_a_columnar_batch_is_400(api, integration, where):
    probe = b"\x78\x07"  # field 15, varint 7: in no message of batch.proto
    column = batch_pb2.Column(strings=["A"]).SerializeToString() + (probe if where == "column" else b"")
    columns = _varint(1 << 3) + _varint(1) + _field(2, column) + (probe if where == "columns" else b"")
    body = _varint(1 << 3) + _varint(1) + _field(2, b"sku") + _field(6, columns) + (probe if where == "batch" else b"")
    assert 15 not in batch_pb2.Column.DESCRIPTOR.fields_by_number
    run_id = open_run(api)["id"]
    response = post_batch(api, run_id, body, content_type=PROTOBUF_TYPE)
    assert response.status_code == 400, response.content
    assert "unknown field number 15" in error_of(response)["message"]


MALFORMED = {
    "short column": lambda m: m.columns.columns[0].strings.pop(),
    "two arrays": lambda m: m.columns.columns[0].ints.extend([1, 2]),
    "null out of range": lambda m: m.columns.columns[0].nulls.append(9),
    "json no array": lambda m: setattr(m.columns.columns[1], "json", '{"a": 1}'),
    "json too short": lambda m: setattr(m.columns.columns[1], "json", "[{}]"),
    "rows and columns": lambda m: m.records.add(),
    "column missing": lambda m: m.columns.columns.pop(),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("damage", MALFORMED, ids=list(MALFORMED))
def test_malformed_columns_are_400(api, integration, damage):
    message = batch_pb2.Batch.FromString(columns_body([{"sku": "A", "attributes": {}}, {"sku": "B", "attributes": {}}]))
    MALFORMED[damage](message)
    run_id = open_run(api)["id"]
    response = post_batch(api, run_id, message.SerializeToString(), content_type=PROTOBUF_TYPE)
    assert response.status_code == 400, response.content
    assert "not a valid protobuf Batch" in error_of(response)["message"]


@pytest.mark.django_db(transaction=True)
def test_a_columnar_run_through_the_api_ends_like_a_row_run(api, integration):
    integration.max_error_rate = 1.0
    integration.save()
    recs = [
        product("OK-1", price=Decimal("19.99"), attributes={"w": 1.5}),
        product("NAN-1", price=float("nan")),
        product("INF-1", attributes={"deep": [float("-inf")]}),
        product("OK-2", quantity=4),
    ]
    ends = {}
    for name, body in (("columns", columns_body(recs)), ("rows", rows_body(recs))):
        run_id = open_run(api, mode="incremental")["id"]
        assert post_batch(api, run_id, body, content_type=PROTOBUF_TYPE).status_code == 202
        assert api.post(f"{API}/runs/{run_id}/complete/", format="json").status_code == 202
        run = SyncRun.objects.get(pk=run_id)
        errors = sorted((e.index, e.key, e.code, e.fields, e.record) for e in RecordError.objects.filter(run=run))
        ends[name] = (run.status, run.received, run.failed, errors)
    assert ends["columns"] == ends["rows"]
    assert ends["columns"][:3] == ("partial", 4, 2)
    assert Product.objects.get(sku="OK-1").price == Decimal("19.99")
    assert Product.objects.get(sku="OK-2").quantity == 4
