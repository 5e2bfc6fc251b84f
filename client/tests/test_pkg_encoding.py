"""The wire form of a batch: protobuf and JSON, compressed deterministically."""

import gzip
import json
from decimal import Decimal

import pytest
from integrations_client.encoding import BatchEncoder, decode_protobuf, encode_batch

RECORDS = [
    {
        "sku": "A",
        "name": "Chair",
        "price": Decimal("49.90"),
        "currency": "EUR",
        "quantity": 3,
        "active": True,
        "attributes": {"color": "red", "sizes": [1, 2.5, None], "empty": {}},
    },
    {"sku": "B", "price": 9.99, "big": 2**70, "none": None},
    {"name": "no key", "active": False},
    {},
]


def test_protobuf_round_trip_keeps_types_and_absent_fields():
    batch = encode_batch(RECORDS, seq=7, deletes=["OLD-1"], compress=False)
    seq, records, deletes = decode_protobuf(batch.body)
    assert (seq, deletes) == (7, ["OLD-1"])
    assert records[0] == {**RECORDS[0], "price": "49.90"}  # a Decimal travels as its exact text
    assert records[1] == {"sku": "B", "price": 9.99, "big": str(2**70), "none": None}
    assert records[2] == {"name": "no key", "active": False}
    assert records[3] == {}
    assert batch.records == 4 and batch.deletes == 1
    assert batch.headers == {"Content-Type": "application/x-protobuf"}


def test_field_names_travel_once_per_batch():
    from integrations_client.proto import batch_pb2

    batch = encode_batch([{"sku": str(i), "name": "x"} for i in range(100)], seq=1, compress=False)
    message = batch_pb2.Batch.FromString(batch.body)
    assert list(message.fields) == ["sku", "name"]
    # in columns: one typed array per field
    assert message.columns.count == 100 and not message.records
    assert list(message.columns.columns[0].strings) == [str(i) for i in range(100)]


def test_json_batch():
    batch = encode_batch(RECORDS[:2], seq=2, deletes=["X"], fmt="json", compress=False)
    body = json.loads(batch.body)
    assert body["seq"] == 2 and body["deletes"] == ["X"]
    assert body["records"][0]["price"] == "49.90"
    assert body["records"][1]["big"] == 2**70
    assert batch.headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
def test_gzip_is_deterministic(fmt):
    first = encode_batch(RECORDS, seq=1, fmt=fmt)
    second = encode_batch(list(RECORDS), seq=1, fmt=fmt)
    assert first.body == second.body
    assert first.content_encoding == "gzip" and first.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(first.body) == encode_batch(RECORDS, seq=1, fmt=fmt, compress=False).body


def test_a_record_that_is_not_a_dict_is_refused():
    encoder = BatchEncoder()
    encoder.add({"sku": "A"})
    with pytest.raises(TypeError, match="record 1 of the batch is list"):
        encoder.add(["not", "a", "dict"])


def test_unknown_value_types_are_refused_but_dates_are_text():
    import datetime

    batch = encode_batch([{"when": datetime.date(2026, 1, 2)}], seq=1, compress=False)
    assert decode_protobuf(batch.body)[1] == [{"when": "2026-01-02"}]
    with pytest.raises(TypeError, match="cannot send a value of type object"):
        encode_batch([{"x": object()}], seq=1)
