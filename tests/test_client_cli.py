"""`integrations-sync`, the console command of the client package, run as a process against the
live server: a JSON array and NDJSON posted as batches, a CSV file uploaded, the exit statuses."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Product

from . import test_client_fixtures as fixtures
from .test_client_fixtures import products

api = fixtures.api


def command() -> list[str]:
    script = Path(sys.executable).with_name("integrations-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "integrations_client.cli"]


def run_cli(api, *args, key=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRATIONS_")}
    return subprocess.run([*command(), "--url", api.url, "--key", key or api.key, *args], capture_output=True,
                          text=True, timeout=300, env=env)


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
    lines = [json.dumps(r) for r in products(4)] + [json.dumps({"sku": "BAD", "name": "x", "price": -1,
                                                                "currency": "EUR"})]
    path.write_text("\n".join(lines) + "\n")
    dry = run_cli(api, "products", str(path), "--dry-run", "--mode", "incremental")
    assert dry.returncode == 1 and "failed (dry run)" in dry.stdout  # 1 of 5 failed, above max_error_rate 0
    assert "key='BAD' invalid" in dry.stdout  # the first errors are listed
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


@pytest.mark.parametrize("args,message", [
    (["products", "/no/such/file.json"], "cannot read"),
    (["products", "data.txt"], "--format"),
    (["products", "x.json", "--batch-size", "0"], "--batch-size"),
    (["products", "x.json", "--mode", "sometimes"], "invalid choice"),
])
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
