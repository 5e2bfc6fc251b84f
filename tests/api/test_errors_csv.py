"""SPEC section 4: the errors CSV is a file to fix and send back as it is. Its columns are the
target's fields in schema order, the unknown fields the records carried, then error_code,
error_message, error_fields, error_seq, error_index; every upload ignores error_* columns; plain
numbers are never neutralised, formulas always are."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Product
from integrations import services
from integrations.errors_csv import cell
from tests.support import product
from tests.support.api import API, sync_over_api

SCHEMA = ["sku", "name", "price", "currency", "quantity", "active", "attributes"]
ERRORS = ["error_code", "error_message", "error_fields", "error_seq", "error_index"]
ATTRS = {"size": "L", "tags": ["a", "b"], "weight": 1.5}


@pytest.fixture
def partial_run(api, integration):
    integration.max_error_rate = 1.0
    integration.save()
    batch = [
        product("OK-1"),
        product("TWO", price="1.005", currency="eur"),  # two bad fields, each with its reason
        product("NEG", price="-1.00", attributes=ATTRS),  # a negative number, a JSON field
        product("QTY", quantity=-3, active=False),  # a negative integer
        product("COL", colour="red"),  # an unknown field
    ]
    run = sync_over_api(api, [batch], mode="incremental")
    assert run["status"] == "partial" and run["counts"]["failed"] == 4, run
    return run


def download(api, run_id) -> tuple[list[str], list[dict]]:
    response = api.get(f"{API}/runs/{run_id}/errors/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return reader.fieldnames, rows


def fixed_file(header, rows) -> bytes:
    """The downloaded file with the bad cells fixed, every other cell (error_* ones too) as it came."""
    fixes = {
        "TWO": {"price": "1.01", "currency": "EUR"},
        "NEG": {"price": "1.00"},
        "QTY": {"quantity": "3"},
        "COL": {"colour": ""},
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **fixes[row["sku"]]})
    return out.getvalue().encode()


def test_columns_in_schema_order_then_unknown_then_error_columns(api, partial_run):
    header, rows = download(api, partial_run["id"])
    assert header == SCHEMA + ["colour"] + ERRORS
    by_sku = {r["sku"]: r for r in rows}
    two = by_sku["TWO"]
    assert two["error_code"] == "invalid" and two["error_message"] == "invalid field(s): price, currency"
    assert two["error_fields"] == "price: At most 2 decimal places.; currency: Must be 3 upper-case letters."
    assert (two["error_seq"], two["error_index"]) == ("1", "1")
    assert by_sku["COL"]["error_code"] == "unknown_field" and by_sku["COL"]["error_fields"] == "colour: Unknown field."
    assert json.loads(by_sku["NEG"]["attributes"]) == ATTRS


def test_plain_numbers_are_not_neutralised(api, partial_run):
    _, rows = download(api, partial_run["id"])
    by_sku = {r["sku"]: r for r in rows}
    assert by_sku["NEG"]["price"] == "-1.00"  # was '-1.00
    assert by_sku["QTY"]["quantity"] == "-3"
    assert by_sku["QTY"]["active"] == "false"
    for number in ("-1.00", "-5", "+3", "-.5", "1e5", "-2E-3", "0"):
        assert cell(number) == number


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1+1",
        "-1+1",
        "-2-3",
        "@SUM(A1)",
        "\t-1",
        "-1\n",
        "-inf",
        "-nan",
        "-1,5",
        "+",
        "-",
        '=HYPERLINK("http://evil.example","x")',
    ],
)
def test_formulas_are_neutralised(text):
    assert cell(text) == "'" + text


def test_the_fixed_file_goes_back_as_it_is_through_the_api(api, integration, partial_run):
    header, rows = download(api, partial_run["id"])
    content = fixed_file(header, rows)
    response = api.post(
        f"{API}/integrations/products/uploads/",
        {"file": SimpleUploadedFile("errors.csv", content), "mode": "incremental"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    final = api.get(f"{API}/runs/{response.json()['id']}/").json()
    assert final["status"] == "succeeded", (final, api.get(f"{API}/runs/{final['id']}/errors/").json())
    assert final["counts"]["created"] == 4 and final["counts"]["failed"] == 0
    assert_fixed(integration)


def test_the_fixed_file_goes_back_as_it_is_through_sync_file(api, integration, partial_run, manage, tmp_path):  # noqa: F811
    header, rows = download(api, partial_run["id"])
    path = tmp_path / "errors.csv"
    path.write_bytes(fixed_file(header, rows))
    out = manage("sync_file", "acme/products", str(path), "--mode", "incremental", "--wait", check=0)
    assert "succeeded" in out.stdout
    assert_fixed(integration)


def assert_fixed(integration):
    rows = {p.sku: p for p in Product.objects.filter(customer=integration.customer)}
    assert set(rows) == {"OK-1", "TWO", "NEG", "QTY", "COL"}
    assert (str(rows["TWO"].price), rows["TWO"].currency) == ("1.01", "EUR")
    assert rows["NEG"].attributes == ATTRS and str(rows["NEG"].price) == "1.00"
    assert rows["QTY"].quantity == 3 and rows["QTY"].active is False


def test_every_upload_ignores_error_columns(integration):
    content = b"sku,name,price,currency,error_code,error_message,error_whatever\nA,A,1.00,EUR,invalid,bad,x\n"
    run = services.upload_create(
        integration=integration, stream=io.BytesIO(content), filename="a.csv", fmt="csv", mode="incremental"
    )
    run.refresh_from_db()
    assert run.status == "succeeded" and run.created == 1


def test_json_keys_named_error_are_still_unknown_fields(api, integration):
    """Only CSV columns are ignored: a JSON record is not the errors file, and a key named error_* in
    it is a mistake worth telling."""
    integration.max_error_rate = 1.0
    integration.save()
    run = sync_over_api(api, [[product("A", error_code="x")]], mode="incremental")
    errors = api.get(f"{API}/runs/{run['id']}/errors/").json()["results"]
    assert [e["code"] for e in errors] == ["unknown_field"]


def test_a_run_without_errors_gives_the_target_columns(api, integration):
    run = sync_over_api(api, [[product("A")]])
    header, rows = download(api, run["id"])
    assert header == SCHEMA + ERRORS and rows == []


def test_a_schema_field_named_error_is_refused_at_registration():
    import msgspec

    from catalog.models import Product as Model
    from integrations.targets import Target, target_problems

    class Rec(msgspec.Struct):
        sku: str
        error_rate: float = 0

    class Bad(Target):
        name, model, key_field, schema = "tests.bad", Model, "sku", Rec

    assert any("error_rate" in p and "errors CSV" in p for p in target_problems(Bad()))


def test_the_admin_download_goes_back_through_the_admin_sync_a_file(admin_client, integration):
    from django.urls import reverse

    from tests.support import sync

    integration.max_error_rate = 1.0
    integration.save()
    run = sync(integration, [product("OK-1"), product("NEG", price="-1.00", attributes=ATTRS)], mode="incremental")
    assert run.status == "partial"
    response = admin_client.get(reverse("admin:integrations_syncrun_errors_csv", args=[run.pk]))
    reader = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode(), newline=""))
    rows = list(reader)
    assert reader.fieldnames == SCHEMA + ERRORS and rows[0]["price"] == "-1.00"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
    writer.writeheader()
    writer.writerows({**row, "price": "1.00"} for row in rows)
    url = reverse("admin:integrations_integration_sync_file", args=[integration.pk])
    upload = SimpleUploadedFile("errors.csv", out.getvalue().encode())
    admin_client.post(url, {"file": upload, "mode": "incremental", "_preview": "1"})
    preview = integration.runs.get(dry_run=True)
    assert preview.status == "succeeded" and preview.created == 1
    admin_client.post(url, {"preview": preview.pk, "_run": "1"})
    real = integration.runs.filter(dry_run=False).order_by("-created_at").first()
    assert real.status == "succeeded" and real.created == 1
    assert Product.objects.get(sku="NEG").attributes == ATTRS
