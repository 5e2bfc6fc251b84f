"""POST integrations/{slug}/uploads/: a whole file (JSON array, NDJSON, CSV) as one run."""

import io
import json

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from catalog.models import Product
from integrations.models import SyncRun
from tests.support import product
from tests.support.api import API, error_of, records

URL = f"{API}/integrations/products/uploads/"


def upload(api, name, content: bytes, **fields):
    return api.post(URL, {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def ndjson(recs) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in recs)


def csv_bytes(recs) -> bytes:
    out = io.StringIO()
    out.write("sku,name,price,currency,quantity,active\n")
    for r in recs:
        out.write(f"{r['sku']},{r['name']},{r['price']},{r['currency']},3,false\n")
    return out.getvalue().encode()


@pytest.mark.parametrize(
    "name, content",
    [
        ("products.json", json.dumps(records(4)).encode()),
        ("products.ndjson", ndjson(records(4))),
        ("products.csv", csv_bytes(records(4))),
    ],
)
def test_upload_202_queued_then_succeeded(api, integration, name, content):
    response = upload(api, name, content)
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["status"] == "queued" and run["source"] == "upload" and run["completed_at"]
    final = api.get(f"{API}/runs/{run['id']}/").json()
    assert final["status"] == "succeeded", final
    assert final["counts"]["created"] == 4
    assert Product.objects.filter(customer=integration.customer).count() == 4
    if name.endswith(".csv"):
        assert set(Product.objects.values_list("quantity", "active")) == {(3, False)}


def test_upload_format_mode_and_dry_run_fields(api, integration):
    response = upload(api, "export.txt", ndjson(records(2)), format="ndjson", mode="incremental", dry_run="true")
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["mode"] == "incremental" and run["dry_run"] is True
    final = api.get(f"{API}/runs/{run['id']}/").json()
    assert final["status"] == "succeeded" and final["counts"]["created"] == 2
    assert not Product.objects.exists()  # a dry run applies nothing


def test_upload_with_broken_records_reports_them(api, integration):
    integration.max_error_rate = 0.5
    integration.save()
    content = ndjson([product("A"), product("B", price="x")]) + b"{broken json\n"
    run = upload(api, "p.ndjson", content).json()
    final = api.get(f"{API}/runs/{run['id']}/").json()
    assert final["status"] == "failed" or final["status"] == "partial"
    codes = sorted(e["code"] for e in api.get(f"{API}/runs/{run['id']}/errors/").json()["results"])
    assert codes == ["invalid", "parse_error"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({}, "file"),
        ({"file": "not a file"}, "file"),
        ({"format": "xml"}, "format"),
        ({"mode": "snapshot"}, "mode"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_upload_refuses_bad_forms_400(api, integration, fields, field):
    data = {"file": SimpleUploadedFile("p.json", b"[]"), **fields} if field != "file" else fields
    response = api.post(URL, data, format="multipart")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid" and field in error["details"]
    assert not SyncRun.objects.exists()


def test_upload_of_unknown_extension_400(api, integration):
    response = upload(api, "products.xlsx", b"PK\x03\x04")
    assert response.status_code == 400
    assert "format" in error_of(response)["message"]
    assert not SyncRun.objects.exists()


def test_upload_must_be_multipart_415(api, integration):
    response = api.post(URL, {"file": "x"}, format="json")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_upload_over_the_limit_413(api, integration):
    content = ndjson(records(100))
    with override_settings(INTEGRATIONS_MAX_UPLOAD_BYTES=len(content) - 1):
        response = upload(api, "p.ndjson", content)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not SyncRun.objects.exists()


def test_large_upload_is_streamed_not_refused_by_djangos_form_limits(api, integration, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # no worker: only the receipt is under test
    content = ndjson(records(60_000))
    assert len(content) > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # Django spools it to a temp file
    response = upload(api, "big.ndjson", content)
    assert response.status_code == 202, response.content[:300]
    run = SyncRun.objects.get(pk=response.json()["id"])
    assert run.status == "queued" and run.upload_format == "ndjson"
    with default_storage.open(run.upload_name, "rb") as stored:
        assert stored.read() == content


def test_oversized_form_field_is_json_413(api, integration, settings):
    # Django refuses non-file form data beyond DATA_UPLOAD_MAX_MEMORY_SIZE; the answer is still JSON
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = upload(api, "p.json", b"[]", mode=big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not SyncRun.objects.exists()
