"""How sync() cuts an iterable into batches (no server needed: nothing is sent)."""

import gzip
import json

from integrations_client import Client, Unparseable
from integrations_client.encoding import decode_protobuf


def client(**kwargs):
    return Client("http://127.0.0.1:9", "prefix.secret", **kwargs)


def records(n):
    for i in range(n):
        yield {"sku": f"S{i}", "name": "x" * 100}


def shape(batches, fmt="protobuf"):
    out = []
    for b in batches:
        body = gzip.decompress(b.body)
        if fmt == "protobuf":
            seq, recs, deletes = decode_protobuf(body)
        else:
            data = json.loads(body)
            seq, recs, deletes = data["seq"], data["records"], data["deletes"]
        out.append((seq, len(recs), len(deletes)))
    return out


def test_batches_by_count():
    assert shape(client().iter_batches(records(250), batch_size=100)) == [(1, 100, 0), (2, 100, 0), (3, 50, 0)]
    assert shape(client().iter_batches(records(200), batch_size=100)) == [(1, 100, 0), (2, 100, 0)]


def test_an_empty_input_is_one_empty_batch():
    assert shape(client().iter_batches(iter([]))) == [(1, 0, 0)]


def test_deletes_ride_along_and_may_need_batches_of_their_own():
    keys = [f"K{i}" for i in range(250)]
    assert shape(client().iter_batches(records(120), batch_size=100, deletes=keys)) == [
        (1, 100, 100),
        (2, 20, 100),
        (3, 0, 50),
    ]


def test_batches_close_early_by_size():
    for fmt in ("protobuf", "json"):
        c = client(format=fmt, max_batch_bytes=10_000)
        got = shape(c.iter_batches(records(300), batch_size=1000), fmt)
        assert sum(n for _, n, _ in got) == 300
        assert len(got) > 3 and all(n < 100 for _, n, _ in got), got


def test_records_are_read_lazily():
    pulled = []

    def tracked():
        for r in records(1000):
            pulled.append(r)
            yield r

    batches = client().iter_batches(tracked(), batch_size=100)
    next(batches)
    assert len(pulled) == 100


def test_an_unparseable_record_travels_in_a_json_batch_of_its_own_start():
    rows = [*records(3), Unparseable("{oops", "line 4 is not valid JSON"), *records(4), Unparseable("x"), *records(5)]
    batches = list(client().iter_batches(iter(rows), batch_size=5))
    # protobuf up to the bad line; a JSON batch starts with it (and may carry more); then protobuf again
    assert [(b.seq, b.content_type, b.records) for b in batches] == [
        (1, "application/x-protobuf", 3),
        (2, "application/json", 5),
        (3, "application/json", 5),
        (4, "application/x-protobuf", 1),
    ]
    sent = json.loads(gzip.decompress(batches[1].body))["records"]
    assert sent[0] == "{oops" and sent[1]["sku"] == "S0"  # a JSON string where a record belongs: a parse_error
    assert json.loads(gzip.decompress(batches[2].body))["records"][0] == "x"
    assert sum(b.records for b in batches) == len(rows)  # the count stays exact


def test_an_unparseable_first_record_makes_no_empty_batch():
    batches = list(client().iter_batches(iter([Unparseable("bad")]), batch_size=5))
    assert [(b.seq, b.content_type, b.records) for b in batches] == [(1, "application/json", 1)]
    batches = list(client(format="json").iter_batches(iter([Unparseable("bad"), *records(2)]), batch_size=5))
    assert [(b.seq, b.content_type, b.records) for b in batches] == [(1, "application/json", 3)]
