"""`integrations-sync`, the console command of the client package, run as a process against the
live server: a JSON array and NDJSON posted as batches, a CSV file uploaded, the exit statuses."""

import csv
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Product
from integrations.models import RecordError, SyncRun
from tests.support.client import products


def command() -> list[str]:
    script = Path(sys.executable).with_name("integrations-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "integrations_client.cli"]


def run_cli(api, *args, key=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRATIONS_")}
    return subprocess.run(
        [*command(), "--url", api.url, "--key", key or api.key, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_json_file_is_streamed_in_batches(api, tmp_path):
    path = tmp_path / "products.json"
    path.write_text(json.dumps([{**r, "price": 12.5, "quantity": 3} for r in products(250)], indent=1))
    result = run_cli(api, "products", str(path), "--batch-size", "100")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("batch ")] == ["batch 1", "batch 2", "batch 3"]
    assert "batch 3: 50 records accepted (250 sent)" in lines
    assert "succeeded" in lines[-1] or any("succeeded; received 250, created 250" in line for line in lines)
    product = Product.objects.get(customer=api.customer, sku="SKU-0000007")
    assert (product.price, product.quantity) == (Decimal("12.50"), 3)


def test_csv_file_is_uploaded_and_typed_by_the_server(api, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,price,currency,quantity,active,attributes\n"
        'A-1,Chair,49.90,EUR,3,true,"{""color"": ""red""}"\n'
        "A-2,Table,120,EUR,,0,\n"
        "A-3,Lamp,9.99,USD,7,false,{}\n"
    )
    result = run_cli(api, "products", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploading" in result.stdout and "succeeded; received 3, created 3" in result.stdout
    rows = {p.sku: p for p in Product.objects.filter(customer=api.customer)}
    assert rows["A-1"].attributes == {"color": "red"} and rows["A-1"].active is True and rows["A-1"].quantity == 3
    assert rows["A-2"].quantity == 0 and rows["A-2"].active is False and rows["A-2"].attributes == {}
    assert rows["A-3"].price == Decimal("9.99") and rows["A-3"].currency == "USD"


def test_dry_run_and_failed_exit_status(api, tmp_path):
    path = tmp_path / "products.ndjson"
    lines = [json.dumps(r) for r in products(4)] + [
        json.dumps({"sku": "BAD", "name": "x", "price": -1, "currency": "EUR"})
    ]
    path.write_text("\n".join(lines) + "\n")
    dry = run_cli(api, "products", str(path), "--dry-run", "--mode", "incremental")
    assert dry.returncode == 1 and "failed (dry run)" in dry.stdout  # 1 of 5 failed, above max_error_rate 0
    assert "key BAD: invalid" in dry.stdout and "key='BAD'" not in dry.stdout  # the first errors are listed
    assert not Product.objects.filter(customer=api.customer).exists()


def test_partial_and_needs_review_exit_statuses(api, tmp_path):
    api.integration.max_error_rate = 0.5
    api.integration.save()
    path = tmp_path / "products.json"
    path.write_text(json.dumps([*products(20), {"sku": "BAD", "name": "x", "price": "oops", "currency": "EUR"}]))
    assert run_cli(api, "products", str(path)).returncode == 3  # partial
    path.write_text(json.dumps(list(products(5))))
    result = run_cli(api, "products", str(path), "-q")
    assert result.returncode == 4 and "needs_review" in result.stdout  # would delete 15 of 20 rows


@pytest.mark.parametrize(
    "args,message",
    [
        (["products", "/no/such/file.json"], "cannot read"),
        (["products", "data.txt"], "--format"),
        (["products", "x.json", "--batch-size", "0"], "--batch-size"),
        (["products", "x.json", "--mode", "sometimes"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(api, args, message):
    result = run_cli(api, *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_server_refusal_is_one_line(api, tmp_path):
    path = tmp_path / "p.json"
    path.write_text("[]")
    result = run_cli(api, "products", str(path), key="wrong.key")
    assert result.returncode == 1 and "the server refused" in result.stderr and "401" in result.stderr
    assert "Traceback" not in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('[{"sku": "A"}, {oops}]')
    result = run_cli(api, "products", str(broken))
    assert result.returncode == 1 and "item 1 of the array is not valid JSON" in result.stderr
    assert "NDJSON" in result.stderr and "Traceback" not in result.stderr  # what to do about it


def partial_run(api, tmp_path):
    """A partial run of 6 records from an NDJSON file: one line that is not JSON, one bad price."""
    api.integration.max_error_rate = 0.5
    api.integration.save()
    path = tmp_path / "products.ndjson"
    lines = [json.dumps(r) for r in products(4)]
    lines.insert(2, '{"sku": "BROKEN", "name": oops}')
    lines.append(json.dumps({"sku": "BAD", "name": "x", "price": "1.234", "currency": "EUR"}))
    path.write_text("\n".join(lines) + "\n")
    return run_cli(api, "products", str(path), "--batch-size", "2")


def test_a_bad_ndjson_line_is_one_parse_error_and_the_file_goes_on(api, tmp_path):
    result = partial_run(api, tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr  # partial, not aborted
    out = result.stdout
    assert "received 6, created 4" in out and "failed 2" in out
    assert "1 line(s) of the file could not be read" in out and "line 3 is not valid JSON" in out
    assert "cancel" not in out + result.stderr
    # the report: keys as text, each error's field reasons, and how to fetch every error
    assert "no key: parse_error" in out and "key BAD: invalid" in out
    assert "    price: " in out and "decimal places" in out
    run = SyncRun.objects.get(integration=api.integration)
    assert f"integrations-sync errors {run.pk}" in out and f"integrations-sync errors {run.pk} --csv" in out
    assert "errors_url" not in out and "/api/v1/" not in out  # no URL that needs the key
    assert run.received == 6 and Product.objects.filter(customer=api.customer).count() == 4
    assert RecordError.objects.get(run=run, code="parse_error").record == '{"sku": "BROKEN", "name": oops}'


def test_errors_and_status_commands(api, tmp_path):
    partial_run(api, tmp_path)
    run_id = str(SyncRun.objects.get(integration=api.integration).pk)

    errors = run_cli(api, "errors", run_id)
    assert errors.returncode == 0, errors.stderr
    assert errors.stdout.splitlines()[0].startswith("batch 2 #0, no key: parse_error")
    assert "key BAD: invalid" in errors.stdout and "price: " in errors.stdout

    only = run_cli(api, "errors", run_id, "--code", "invalid")
    assert "BAD" in only.stdout and "parse_error" not in only.stdout

    as_csv = run_cli(api, "errors", run_id, "--csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert as_csv.returncode == 0 and [r["error_code"] for r in rows] == ["parse_error", "invalid"]
    out = tmp_path / "errors.csv"
    assert run_cli(api, "errors", run_id, "--csv", "-o", str(out)).returncode == 0
    assert out.read_text() == as_csv.stdout

    status = run_cli(api, "status", run_id)
    assert status.returncode == 0 and f"run {run_id}: partial; received 6" in status.stdout
    waited = run_cli(api, "status", run_id, "--wait")
    assert waited.returncode == 3 and "partial" in waited.stdout  # the exit status of a sync

    unknown = run_cli(api, "status", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and "the server refused" in unknown.stderr and "404" in unknown.stderr


def test_needs_review_hint(api, tmp_path):
    path = tmp_path / "products.json"
    path.write_text(json.dumps(list(products(20))))
    assert run_cli(api, "products", str(path)).returncode == 0
    path.write_text(json.dumps(list(products(5))))
    result = run_cli(api, "products", str(path), "-q")
    assert result.returncode == 4
    run_id = SyncRun.objects.filter(integration=api.integration).order_by("-created_at").first().pk
    assert (
        "next: held for staff review" in result.stdout and f"integrations-sync status {run_id} --wait" in result.stdout
    )


def test_progress_bars_on_request_and_silence_when_quiet(api, tmp_path):
    path = tmp_path / "products.json"
    path.write_text(json.dumps(list(products(30))))
    shown = run_cli(api, "products", str(path), "--batch-size", "10", "--progress")
    assert shown.returncode == 0
    assert "sending" in shown.stderr and "30 records" in shown.stderr and "processing" in shown.stderr
    assert "batch 1:" not in shown.stdout  # the bars replace the per-batch lines
    quiet = run_cli(api, "products", str(path), "--progress", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("run ")


def test_an_integration_named_like_a_command_is_synced_with_sync(api, tmp_path):
    from integrations import services

    services.integration_create(customer=api.customer, slug="status", target="catalog.product")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(list(products(2))))
    result = run_cli(api, "sync", "status", str(path), "--mode", "incremental")
    assert result.returncode == 0 and "created 2" in result.stdout
