"""JSON records encoded a chunk at a time (BatchEncoder.add_many, the client's batch loop): the same
bytes as one record at a time, whatever the records hold, and the same refusals."""

import math
from decimal import Decimal

import pytest
from integrations_client import Client
from integrations_client.encoding import BatchEncoder

CHUNKS = {
    "plain": [{"sku": f"S{i}", "price": i / 4, "n": i, "ok": i % 2 == 0} for i in range(50)],
    "nulls and nesting": [
        {"sku": "A", "name": None, "attributes": {"color": "red", "sizes": [1, 2.5, None], "empty": {}}},
        {"sku": "B", "deep": [[{"x": [Decimal("1.50"), "é", "\u2028"]}]]},
        {},
    ],
    "decimals": [{"price": Decimal("19.999999999999999999")}, {"price": Decimal("1e400")}],
    "an integer JSON cannot hold in 64 bits": [{"sku": "A"}, {"big": 2**70}],
    "a value only the standard library's default writes": [
        {"sku": "A", "when": __import__("datetime").date(2026, 1, 2)}
    ],
    "a mapping that is no dict": [{"sku": "A"}, __import__("types").MappingProxyType({"sku": "B"})],
}


def one_at_a_time(records) -> bytes:
    encoder = BatchEncoder("json", compress=False)
    for record in records:
        encoder.add(record)
    return encoder.finish(1).body


@pytest.mark.parametrize("name", CHUNKS)
def test_a_chunk_is_the_same_bytes_as_its_records_one_at_a_time(name):
    records = CHUNKS[name]
    encoder = BatchEncoder("json", compress=False)
    encoder.add_many(records[:1])
    encoder.add_many(records[1:])
    assert encoder.count == len(records)
    assert encoder.finish(1).body == one_at_a_time(records)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_chunk_with_a_non_finite_float_is_refused_as_one_record_is(bad):
    records = [{"sku": "A", "price": 1.0}, {"sku": "B", "nested": {"price": [bad]}}]
    with pytest.raises(ValueError):
        one_at_a_time(records)
    with pytest.raises(ValueError):
        BatchEncoder("json", compress=False).add_many(records)


def test_batches_of_chunks_keep_their_sizes_and_order():
    client = Client("http://127.0.0.1:9", "key", format="json")
    records = [{"sku": f"S{i:05d}", "n": i} for i in range(2_345)]
    batches = list(client.iter_batches(iter(records), batch_size=1_000))
    assert [b.records for b in batches] == [1_000, 1_000, 345]
    body = b"".join(__import__("gzip").decompress(b.body) for b in batches)
    assert body.count(b'"sku"') == 2_345 and body.index(b"S00000") < body.index(b"S02344")


def test_a_chunk_of_wide_records_does_not_carry_a_batch_far_past_its_byte_limit():
    client = Client("http://127.0.0.1:9", "key", format="json", max_batch_bytes=200_000)
    records = [{"sku": f"S{i}", "text": "x" * (100 if i < 100 else 5_000)} for i in range(400)]
    batches = list(client.iter_batches(iter(records), batch_size=1_000))
    assert sum(b.records for b in batches) == 400
    assert all(len(__import__("gzip").decompress(b.body)) < 2 * 200_000 for b in batches)


PROTOBUF_CHUNKS = {
    **CHUNKS,
    "same fields": [{"sku": f"S{i}", "name": "é" * i, "price": Decimal(i), "tags": [i]} for i in range(20)],
    "fields differing": [{"sku": "A", "n": 1}, {"n": 2, "sku": "B"}, {"sku": "C"}, {"sku": "D", "extra": None}],
    "mixed kinds in a field": [{"sku": "A", "v": 1}, {"sku": "B", "v": "x"}, {"sku": "C", "v": None}],
}


@pytest.mark.parametrize("name", PROTOBUF_CHUNKS)
def test_a_protobuf_chunk_is_the_same_batch_as_its_records_one_at_a_time(name):
    records = [r for r in PROTOBUF_CHUNKS[name] if type(r) is dict and "big" not in r and "when" not in r]
    one = BatchEncoder("protobuf", compress=False)
    for record in records:
        one.add(record)
    many = BatchEncoder("protobuf", compress=False)
    many.add_many(records[:3])
    many.add_many(records[3:])
    assert (many.count, many.size) == (one.count, one.size)
    assert many.finish(1).body == one.finish(1).body


def test_a_batch_full_before_an_unparseable_record_loses_and_reorders_nothing():
    from integrations_client.encoding import Unparseable, decode_protobuf

    client = Client("http://127.0.0.1:9", "key", max_batch_bytes=3_000)  # protobuf: ~25 records a batch
    rows = [{"sku": f"S{i:03d}", "name": "x" * 100} for i in range(40)]
    rows[30:30] = [Unparseable("{oops")]
    batches = list(client.iter_batches(iter(rows), batch_size=1_000))
    sent = []
    for b in batches:
        body = __import__("gzip").decompress(b.body)
        if b.content_type == "application/json":
            sent += [r if isinstance(r, str) else r["sku"] for r in __import__("json").loads(body)["records"]]
        else:
            sent += [r["sku"] for r in decode_protobuf(body)[1]]
    assert sent == [r.text if isinstance(r, Unparseable) else r["sku"] for r in rows]
    assert len(batches) >= 3 and all(b.records < 40 for b in batches)
