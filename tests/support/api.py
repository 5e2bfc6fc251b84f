"""Helpers of the tests of the batch API (its fixtures `api`, `api_key`, `other_api` are in tests/conftest.py)."""

import gzip
import json

from rest_framework.test import APIClient

from integrations.proto.testing import encode_batch
from tests.support import product

API = "/api/v1"
JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def error_of(response) -> dict:
    """The JSON error body, checked for its shape."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def records(n: int, start: int = 0, **extra) -> list[dict]:
    return [product(f"SKU-{i:06d}", **extra) for i in range(start, start + n)]


def json_body(seq: int, recs: list, deletes: list | None = None) -> bytes:
    body = {"seq": seq, "records": recs}
    if deletes is not None:
        body["deletes"] = deletes
    return json.dumps(body).encode()


def proto_body(seq: int, recs: list, deletes: list | None = None) -> bytes:
    return encode_batch(recs, seq=seq, deletes=deletes or ())


def post_batch(client, run_id, body: bytes, *, content_type=JSON_TYPE, gzipped=False, **headers):
    if gzipped:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    return client.generic("POST", f"{API}/runs/{run_id}/batches/", body, content_type=content_type, **headers)


def open_run(client, slug="products", **body) -> dict:
    response = client.post(f"{API}/integrations/{slug}/runs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def sync_over_api(client, batches: list[list[dict]], *, mode="full", content_type=JSON_TYPE, gzipped=False) -> dict:
    """A whole sync through the API; returns the run object after completion (tasks run inline)."""
    run = open_run(client, mode=mode)
    encode = proto_body if content_type == PROTOBUF_TYPE else json_body
    for seq, recs in enumerate(batches, start=1):
        response = post_batch(client, run["id"], encode(seq, recs), content_type=content_type, gzipped=gzipped)
        assert response.status_code == 202, response.content
    response = client.post(f"{API}/runs/{run['id']}/complete/", format="json")
    assert response.status_code == 202, response.content
    return client.get(f"{API}/runs/{run['id']}/").json()
