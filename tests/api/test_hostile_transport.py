"""Hostile transport through the real API: compression bombs and tricks, wrong content types.
Each ends in a clear 4xx JSON error (413 for a bomb, never an out-of-memory), nothing stored, the
tables unchanged."""

import functools
import gzip
import resource
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from integrations.models import SyncBatch, SyncRun
from tests.support import product
from tests.support.api import API, JSON_TYPE, PROTOBUF_TYPE, json_body, post_batch
from tests.support.hostile import refused


@functools.cache
def bomb(megabytes: int, wbits: int = 31, prefix: bytes = b"") -> bytes:
    """`megabytes` MiB of spaces (valid JSON whitespace after `prefix`) in a few hundred KB."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, wbits)
    chunk = b" " * (1 << 20)
    return (
        compressor.compress(prefix)
        + b"".join(compressor.compress(chunk) for _ in range(megabytes))
        + compressor.flush()
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("encoding, wbits", [("gzip", 31), ("x-gzip", 31), ("deflate", 15)])
def test_compression_bomb_413_without_inflating_it(api, tables, encoding, wbits):
    body = bomb(512, wbits, prefix=b'{"seq":1,"records":[]')  # 512 MiB inflated, 8 times the limit
    assert len(body) < 3_000_000
    before = peak_rss_mb()
    response = post_batch(api, tables.mine, body, HTTP_CONTENT_ENCODING=encoding)
    refused(response, 413, "too_large")
    assert peak_rss_mb() - before < 200  # at most the 64 MiB limit was inflated, never the 512 MiB
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


def test_small_limit_bomb_413(api, tables):
    with override_settings(INTEGRATIONS_MAX_BATCH_BYTES=10_000):
        refused(post_batch(api, tables.mine, bomb(1), HTTP_CONTENT_ENCODING="gzip"), 413, "too_large")
    tables.assert_unchanged()


@pytest.mark.parametrize(
    "body, encoding, fragment",
    [
        (gzip.compress(gzip.compress(json_body(1, [product("A")]))), "gzip", "not valid JSON"),  # gzip in gzip
        (gzip.compress(json_body(1, [product("A")])) + gzip.compress(b"more"), "gzip", "after the end"),  # 2 members
        (gzip.compress(json_body(1, [product("A")])) + b"trailing", "gzip", "after the end"),
        (gzip.compress(json_body(1, [product("A")]))[:-12], "gzip", "truncated"),
        (b"\x1f\x8b\x08\x00garbage", "gzip", "gzip"),
        (json_body(1, [product("A")]), "gzip", "not valid gzip"),  # says gzip, is not
        (gzip.compress(json_body(1, [product("A")])), "deflate", "not valid deflate"),
    ],
    ids=["nested", "two-members", "trailing", "truncated", "garbage", "plain-as-gzip", "gzip-as-deflate"],
)
def test_compression_tricks_400(api, tables, body, encoding, fragment):
    error = refused(post_batch(api, tables.mine, body, HTTP_CONTENT_ENCODING=encoding), 400, "malformed")
    assert fragment in error["message"], error
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "gzip;q=1", "identity, gzip"])
def test_unsupported_content_encoding_415(api, tables, encoding):
    body = gzip.compress(json_body(1, [product("A")]))
    refused(post_batch(api, tables.mine, body, HTTP_CONTENT_ENCODING=encoding), 415, "unsupported_media_type")
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


def test_upload_of_a_compressed_bomb_is_not_inflated(api, tables):
    """Uploads are never decompressed: a gzip bomb named .json is an unreadable JSON file."""
    response = api.post(
        f"{API}/integrations/products/uploads/",
        {"file": SimpleUploadedFile("bomb.json", bomb(64)), "mode": "incremental"},
        format="multipart",
    )
    assert response.status_code == 202
    run = SyncRun.objects.get(pk=response.json()["id"])
    assert run.status == "failed" and "not a valid JSON array" in run.message
    tables.assert_unchanged()


def test_upload_over_the_limit_413(api, tables):
    with override_settings(INTEGRATIONS_MAX_UPLOAD_BYTES=1000):
        response = api.post(
            f"{API}/integrations/products/uploads/",
            {"file": SimpleUploadedFile("big.ndjson", b"{}\n" * 1000)},
            format="multipart",
        )
    refused(response, 413, "too_large")
    assert SyncRun.objects.count() == 2
    tables.assert_unchanged()


BATCH = json_body(1, [product("A")])


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "text/csv",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/jsonp",
        "application/json-patch+json",
        "",
        "application/x-ndjson",
    ],
)
def test_batch_with_a_wrong_content_type_415(api, tables, content_type):
    response = api.generic("POST", f"{API}/runs/{tables.mine}/batches/", BATCH, content_type=content_type)
    refused(response, 415, "unsupported_media_type")
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


def test_batch_body_of_the_other_format_400(api, tables):
    from tests.support.api import proto_body

    refused(post_batch(api, tables.mine, proto_body(1, [product("A")]), content_type=JSON_TYPE), 400, "malformed")
    refused(post_batch(api, tables.mine, BATCH, content_type=PROTOBUF_TYPE), 400, "malformed")
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


@pytest.mark.parametrize("url", ["integrations/products/runs/", "runs/{mine}/complete/"])
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", b'{"mode": "full"}'),
        ("application/x-www-form-urlencoded", b"mode=full"),
        ("application/xml", b"<mode>full</mode>"),
        ("application/x-protobuf", b"\x08\x01"),
    ],
)
def test_json_endpoints_with_a_wrong_content_type_415(api, tables, url, content_type, body):
    response = api.generic("POST", f"{API}/{url.format(mine=tables.mine)}", body, content_type=content_type)
    refused(response, 415, "unsupported_media_type")
    assert SyncRun.objects.count() == 2
    assert SyncRun.objects.get(pk=tables.mine).status == "receiving"
    tables.assert_unchanged()


@pytest.mark.parametrize(
    "content_type, body",
    [
        (JSON_TYPE, b'[{"sku": "A"}]'),
        ("text/csv", b"sku\nA\n"),
        ("application/octet-stream", b"\x00\x01"),
    ],
)
def test_upload_that_is_not_multipart_415(api, tables, content_type, body):
    response = api.generic("POST", f"{API}/integrations/products/uploads/", body, content_type=content_type)
    refused(response, 415, "unsupported_media_type")
    assert SyncRun.objects.count() == 2
    tables.assert_unchanged()


def test_malformed_multipart_400(api, tables):
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n\r\n[]'  # never closed
    response = api.generic(
        "POST", f"{API}/integrations/products/uploads/", body, content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 400, response.content
    refused(response, 400)
    assert SyncRun.objects.count() == 2
    assert not SyncBatch.objects.exists()
    tables.assert_unchanged()
