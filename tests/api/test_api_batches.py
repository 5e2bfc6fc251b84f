"""POST runs/{id}/batches/: JSON and protobuf, with and without gzip; idempotent by seq; limits."""

import gzip
import hashlib
import json
import zlib

import pytest
import requests
from django.core.files.storage import default_storage
from django.test import override_settings

from catalog.models import Product
from integrations.models import SyncBatch, SyncRun
from tests.support import product
from tests.support.api import (
    API,
    JSON_TYPE,
    PROTOBUF_TYPE,
    error_of,
    json_body,
    open_run,
    post_batch,
    proto_body,
    records,
    sync_over_api,
)

FORMATS = [(JSON_TYPE, False), (JSON_TYPE, True), (PROTOBUF_TYPE, False), (PROTOBUF_TYPE, True)]
FORMAT_IDS = ["json", "json+gzip", "protobuf", "protobuf+gzip"]


def encode(content_type, seq, recs, deletes=None):
    return (proto_body if content_type == PROTOBUF_TYPE else json_body)(seq, recs, deletes)


@pytest.fixture
def run_id(api, integration):
    return open_run(api)["id"]


@pytest.mark.parametrize("content_type, gzipped", FORMATS, ids=FORMAT_IDS)
def test_batch_202_then_same_bytes_200_then_other_bytes_409(api, run_id, content_type, gzipped):
    body = encode(content_type, 1, records(3), deletes=["GONE-1"])
    first = post_batch(api, run_id, body, content_type=content_type, gzipped=gzipped)
    assert first.status_code == 202, first.content
    assert first.json() == {"seq": 1, "received": 3, "status": "received"}
    batch = SyncBatch.objects.get(run_id=run_id, seq=1)
    assert (batch.received, batch.deletes, batch.content_type) == (3, 1, content_type)
    assert batch.content_encoding == ("gzip" if gzipped else "")
    # the raw bytes, as sent, are in storage before the answer
    with default_storage.open(batch.payload, "rb") as fh:
        stored = fh.read()
    assert (gzip.decompress(stored) if gzipped else stored) == body
    assert batch.sha256 == hashlib.sha256(stored).hexdigest()

    again = client_repost(api, run_id, stored, content_type, gzipped)
    assert again.status_code == 200 and again.json() == first.json()
    other = post_batch(api, run_id, encode(content_type, 1, records(4)), content_type=content_type, gzipped=gzipped)
    assert other.status_code == 409
    assert error_of(other) == {
        "code": "conflict",
        "message": "batch 1 was already received with other content",
        "details": {"seq": 1},
    }
    assert SyncBatch.objects.filter(run_id=run_id).count() == 1


def client_repost(api, run_id, stored, content_type, gzipped):
    headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzipped else {}
    return api.generic("POST", f"{API}/runs/{run_id}/batches/", stored, content_type=content_type, **headers)


@pytest.mark.parametrize("content_type, gzipped", FORMATS, ids=FORMAT_IDS)
def test_whole_sync_applies_the_records(api, integration, content_type, gzipped):
    batches = [records(3), records(2, start=3, quantity=7, active=False, attributes={"size": "L", "n": [1, 2.5]})]
    run = sync_over_api(api, batches, content_type=content_type, gzipped=gzipped)
    assert run["status"] == "succeeded", run
    assert run["counts"]["received"] == 5 and run["counts"]["created"] == 5
    item = Product.objects.get(customer=integration.customer, sku="SKU-000004")
    assert (item.quantity, item.active, item.attributes) == (7, False, {"size": "L", "n": [1, 2.5]})
    assert str(item.price) == "9.99"


def test_json_and_protobuf_batches_mix_in_one_run(api, integration):
    run = open_run(api)
    assert post_batch(api, run["id"], json_body(1, records(2))).status_code == 202
    assert (
        post_batch(
            api, run["id"], proto_body(2, records(2, start=2)), content_type=PROTOBUF_TYPE, gzipped=True
        ).status_code
        == 202
    )
    assert api.post(f"{API}/runs/{run['id']}/complete/", {"batches": 2, "records": 4}, format="json").status_code == 202
    assert api.get(f"{API}/runs/{run['id']}/").json()["status"] == "succeeded"
    assert Product.objects.count() == 4


def test_protobuf_deletes_are_applied(api, integration):
    sync_over_api(api, [records(3)])
    run = open_run(api, mode="incremental")
    post_batch(api, run["id"], proto_body(1, [], deletes=["SKU-000001"]), content_type=PROTOBUF_TYPE)
    api.post(f"{API}/runs/{run['id']}/complete/", format="json")
    assert api.get(f"{API}/runs/{run['id']}/").json()["counts"]["deleted"] == 1
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["SKU-000000", "SKU-000002"]


def test_content_type_parameters_and_aliases(api, run_id):
    response = post_batch(api, run_id, json_body(1, records(1)), content_type="application/json; charset=utf-8")
    assert response.status_code == 202
    response = post_batch(api, run_id, proto_body(2, records(1)), content_type="application/protobuf")
    assert response.status_code == 202
    assert SyncBatch.objects.get(run_id=run_id, seq=2).content_type == PROTOBUF_TYPE


def test_batch_to_a_run_not_receiving_409(api, integration):
    run = sync_over_api(api, [records(1)])
    response = post_batch(api, run["id"], json_body(2, records(1)))
    assert response.status_code == 409
    assert error_of(response)["details"] == {"status": "succeeded"}


@pytest.mark.parametrize(
    "body, content_type, fragment",
    [
        (b"{not json", JSON_TYPE, "not valid JSON"),
        (b"", JSON_TYPE, "not valid JSON"),
        (b"[1, 2]", JSON_TYPE, "not a batch object"),
        (b'{"seq": 1}', JSON_TYPE, "not a batch object"),
        (b'{"seq": 1, "records": {}}', JSON_TYPE, "not a batch object"),
        (b'{"seq": "one", "records": []}', JSON_TYPE, "not a batch object"),
        (b'{"records": []}', JSON_TYPE, "seq"),
        (b'{"seq": 0, "records": []}', JSON_TYPE, "seq"),
        (b'{"seq": 2147483648, "records": []}', JSON_TYPE, "seq"),
        (b'{"seq": 1, "records": [], "deletes": [5]}', JSON_TYPE, "deletes"),
        (b"\xff\xfe garbage \x00\x01", PROTOBUF_TYPE, "protobuf"),
    ],
)
def test_malformed_batches_400(api, run_id, body, content_type, fragment):
    response = post_batch(api, run_id, body, content_type=content_type)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] in ("malformed", "invalid")
    assert fragment in error["message"] or fragment in json.dumps(error["details"])
    assert not SyncBatch.objects.exists()


def test_protobuf_record_wider_than_its_fields_400(api, run_id):
    from integrations.proto import batch_pb2

    message = batch_pb2.Batch(seq=1, fields=["sku"])
    record = message.records.add()
    record.values.add().string_value = "A"
    record.values.add().string_value = "one too many"
    response = post_batch(api, run_id, message.SerializeToString(), content_type=PROTOBUF_TYPE)
    assert response.status_code == 400
    assert "record 0 has 2 values for 1 fields" in error_of(response)["message"]


def test_truncated_gzip_400(api, run_id):
    compressed = gzip.compress(json_body(1, records(50)))
    response = api.generic(
        "POST",
        f"{API}/runs/{run_id}/batches/",
        compressed[: len(compressed) // 2],
        content_type=JSON_TYPE,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed"
    response = api.generic(
        "POST",
        f"{API}/runs/{run_id}/batches/",
        b"plainly not gzip",
        content_type=JSON_TYPE,
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 400


def test_unsupported_content_type_or_encoding_415(api, run_id):
    response = post_batch(api, run_id, b"sku,name\n1,a\n", content_type="text/csv")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    response = api.generic(
        "POST",
        f"{API}/runs/{run_id}/batches/",
        json_body(1, records(1)),
        content_type=JSON_TYPE,
        HTTP_CONTENT_ENCODING="br",
    )
    assert response.status_code == 415
    assert "br" in error_of(response)["message"]
    assert not SyncBatch.objects.exists()


def test_50000_records_accepted_50001_is_413(api, run_id):
    body = json_body(1, records(50_000))
    assert len(body) > 2_621_440  # well past Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    response = post_batch(api, run_id, body)
    assert response.status_code == 202, response.content[:500]
    assert response.json() == {"seq": 1, "received": 50_000, "status": "received"}
    too_many = post_batch(api, run_id, json_body(2, records(50_001)))
    assert too_many.status_code == 413
    error = error_of(too_many)
    assert error["code"] == "too_large" and error["details"] == {"records": 50_001, "limit": 50_000}
    pb = post_batch(api, run_id, proto_body(3, records(50_001)), content_type=PROTOBUF_TYPE, gzipped=True)
    assert pb.status_code == 413
    assert error_of(pb)["details"]["records"] == 50_001
    assert list(SyncBatch.objects.filter(run_id=run_id).values_list("seq", flat=True)) == [1]


def test_gzip_bomb_413(api, run_id):
    # 128 MiB of zeros in ~600 KB, twice the default 64 MiB limit: refused once the limit is
    # passed, never inflated whole
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(128)) + compressor.flush()
    assert len(bomb) < 1024 * 1024
    response = api.generic(
        "POST", f"{API}/runs/{run_id}/batches/", bomb, content_type=JSON_TYPE, HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not SyncBatch.objects.exists()


def test_byte_limit_applies_to_the_body_and_to_what_it_inflates_to(api, run_id):
    body = json_body(1, records(200))
    with override_settings(INTEGRATIONS_MAX_BATCH_BYTES=len(body) - 1):
        plain = post_batch(api, run_id, body)
        assert plain.status_code == 413 and error_of(plain)["code"] == "too_large"
        inflated = post_batch(api, run_id, body, gzipped=True)  # small on the wire, too big inflated
        assert inflated.status_code == 413 and error_of(inflated)["code"] == "too_large"
    with override_settings(INTEGRATIONS_MAX_BATCH_BYTES=len(body)):
        assert post_batch(api, run_id, body).status_code == 202


def test_foreign_run_batch_is_404_and_nothing_is_stored(other_customer, run_id):
    from integrations import services
    from tests.support.api import client_for

    _, raw = services.api_key_create(customer=other_customer)
    response = post_batch(client_for(raw), run_id, json_body(1, records(1)))
    assert response.status_code == 404
    assert not SyncBatch.objects.exists()
    assert not default_storage.exists(f"integrations/{run_id}")


def test_invalid_records_are_accepted_at_receipt_and_fail_later(api, integration):
    run = sync_over_api(api, [[product("A"), product("B", price="free")]])
    assert run["status"] == "failed" and run["counts"]["failed"] == 1


def test_50000_record_batch_over_real_http(live_server, api_key, integration):
    """Through a real socket and WSGI server: gzip JSON and plain protobuf, each 50,000 records."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    base = f"{live_server.url}{API}"
    run = session.post(f"{base}/integrations/products/runs/", json={"mode": "full"}).json()
    recs = records(50_000)
    response = session.post(
        f"{base}/runs/{run['id']}/batches/",
        data=gzip.compress(json_body(1, recs)),
        headers={"Content-Type": JSON_TYPE, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 202, response.text[:500]
    assert response.json()["received"] == 50_000
    response = session.post(
        f"{base}/runs/{run['id']}/batches/",
        data=proto_body(2, records(50_000, start=50_000)),
        headers={"Content-Type": PROTOBUF_TYPE},
    )
    assert response.status_code == 202, response.text[:500]
    response = session.post(
        f"{base}/runs/{run['id']}/batches/", data=json_body(3, records(50_001)), headers={"Content-Type": JSON_TYPE}
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "too_large"
    assert SyncRun.objects.get(pk=run["id"]).batches.count() == 2
