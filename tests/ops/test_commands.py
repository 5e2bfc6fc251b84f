"""SPEC section 8: the management commands, run as a user runs them (subprocesses: real exit
statuses, one-line errors, no tracebacks) against the test database."""

import json
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from catalog.models import Product
from integrations.models import ApiKey, SyncRun

pytestmark = pytest.mark.slow  # a manage.py process per command
ROOT = Path(settings.BASE_DIR)


def write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return str(path)


def rec(sku, **kw):
    return {"sku": sku, "name": sku, "price": "1.00", "currency": "EUR", **kw}


def test_setup_commands_and_their_errors(manage):
    manage("create_customer", "acme", "--name", "Acme", "--email", "it@acme.example", check=0)
    out = manage("create_customer", "acme", "--name", "Again", check=1)
    assert "already exists" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert manage("create_customer", "bad", "--name", "B", "--email", "not-an-email", check=1).stderr.strip()
    manage(
        "create_integration",
        "acme",
        "products",
        "--target",
        "catalog.product",
        "--max-error-rate",
        "0.1",
        "--field-map",
        '{"Title": "name"}',
        check=0,
    )
    assert (
        "unknown customer" in manage("create_integration", "nobody", "p", "--target", "catalog.product", check=1).stderr
    )
    assert "unknown target" in manage("create_integration", "acme", "p2", "--target", "catalog.nothing", check=1).stderr
    assert (
        "not valid JSON"
        in manage(
            "create_integration", "acme", "p3", "--target", "catalog.product", "--field-map", "{oops", check=1
        ).stderr
    )
    assert (
        "not a field"
        in manage(
            "create_integration", "acme", "p4", "--target", "catalog.product", "--field-map", '{"a": "colour"}', check=1
        ).stderr
    )
    assert manage("create_integration", "acme", "products", "--target", "catalog.product", check=1).stderr
    out = manage("create_api_key", "acme", "--name", "ci", check=0)
    key = out.stdout.strip().splitlines()[-1]
    prefix, secret = key.split(".")
    assert ApiKey.objects.get_from_key(key).customer.slug == "acme"
    assert "revoked API key" in manage("revoke_api_key", prefix, check=0).stdout
    assert ApiKey.objects.get(prefix=prefix).revoked
    again = manage("revoke_api_key", key, check=0)  # the whole key works too; idempotent, and says so
    assert "already revoked; nothing changed" in again.stdout
    assert manage("revoke_api_key", "nosuch", check=1).stderr
    assert manage("create_api_key", "nobody", check=1).stderr


def test_sync_file_wait_exit_statuses(manage, tmp_path):
    manage("create_customer", "acme", "--name", "Acme", check=0)
    manage("create_integration", "acme", "products", "--target", "catalog.product", "--max-error-rate", "0.5", check=0)
    ok = write(tmp_path, "ok.json", [rec(f"S{i}") for i in range(15)])
    out = manage("sync_file", "acme/products", ok, "--wait", check=0)
    run_id = out.stdout.splitlines()[0]
    assert f"run {run_id}: succeeded; received 15, created 15" in out.stdout
    partial = write(tmp_path, "partial.json", [rec(f"S{i}") for i in range(15)] + [rec("BAD", price="1.234")])
    out = manage("sync_file", "acme/products", partial, "--wait", check=3)
    # the final report: the first errors with their field-level reasons, and how to get them all
    assert "first errors:" in out.stdout and "key BAD: invalid" in out.stdout
    assert "    price: " in out.stdout and "decimal places" in out.stdout
    assert "next: every error as CSV" in out.stdout
    failing = write(tmp_path, "fail.json", [rec("X", price=-1), rec("Y", price=-1), rec("S1")])
    manage("sync_file", "acme/products", failing, "--wait", check=1)
    held = write(tmp_path, "held.json", [rec("S1")])
    out = manage("sync_file", "acme/products", held, "--wait", check=4)
    run_id = out.stdout.strip().splitlines()[0]
    assert "next: held for staff review" in out.stdout and f"review_run {run_id} --approve" in out.stdout
    assert SyncRun.objects.get(pk=run_id).status == "needs_review"
    dry = write(tmp_path, "dry.json", [rec("S1", name="changed")])
    manage("sync_file", "acme/products", dry, "--mode", "incremental", "--dry-run", "--wait", check=0)
    assert Product.objects.get(sku="S1").name == "S1"
    # review_run approves the held run (by a unique start of its id, as the admin lists it);
    # an unknown or not-held run is refused
    manage("review_run", run_id[:8], "--approve", check=0)
    assert SyncRun.objects.get(pk=run_id).status == "succeeded"
    assert Product.objects.count() == 1
    assert manage("review_run", run_id, "--approve", check=1).stderr
    assert manage("review_run", "00000000-0000-0000-0000-000000000000", "--reject", check=1).stderr
    assert manage("review_run", "not-a-uuid", "--reject", check=1).stderr


def test_sync_file_bad_input(manage, tmp_path):
    manage("create_customer", "acme", "--name", "Acme", check=0)
    manage("create_integration", "acme", "products", "--target", "catalog.product", check=0)
    assert "cannot read" in manage("sync_file", "acme/products", str(tmp_path / "missing.json"), check=1).stderr
    assert "unknown integration" in manage("sync_file", "acme/nothing", str(tmp_path / "x.json"), check=1).stderr
    assert "CUSTOMER/INTEGRATION" in manage("sync_file", "products", str(tmp_path / "x.json"), check=1).stderr
    odd = tmp_path / "data.txt"
    odd.write_text("[]")
    refused = manage("sync_file", "acme/products", str(odd), check=1).stderr
    assert "--format json|ndjson|csv" in refused and "format=" not in refused
    assert manage("sync_file", "acme/products", str(odd), "--format", "json", "--wait", check=0).returncode == 0
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("sku,name,price,currency\nA,a,1,EUR\n")
    out = manage("sync_file", "acme/products", str(csv_path), "--mode", "incremental", "--wait", check=0)
    assert "created 1" in out.stdout
    # a bad argument is argparse's usage error
    assert manage("sync_file", "acme/products", str(csv_path), "--mode", "sideways").returncode == 2


def test_review_run_by_id_prefix_and_ambiguous_prefixes(manage, tmp_path):
    manage("create_customer", "acme", "--name", "Acme", check=0)
    manage("create_integration", "acme", "products", "--target", "catalog.product", check=0)
    integration = SyncRun._meta.get_field("integration").related_model.objects.get(slug="products")
    a = SyncRun.objects.create(
        id=uuid.UUID("1bbb6310-0000-4000-8000-000000000001"),
        integration=integration,
        mode="full",
        status="needs_review",
        completed_at=timezone.now(),
    )
    SyncRun.objects.create(
        id=uuid.UUID("1bbb6310-ffff-4000-8000-000000000002"),
        integration=integration,
        mode="full",
        status="needs_review",
        completed_at=timezone.now(),
    )
    ambiguous = manage("review_run", "1bbb6310", "--reject", check=1).stderr
    assert "several runs" in ambiguous and str(a.pk) in ambiguous and len(ambiguous.strip().splitlines()) == 1
    out = manage("review_run", "1bbb631000004", "--reject", check=0)  # no dashes, still unique
    assert "rejected" in out.stdout and SyncRun.objects.get(pk=a.pk).status == "cancelled"
    assert "unknown run" in manage("review_run", "ffff", "--reject", check=1).stderr
    assert "not a run id" in manage("review_run", "zz", "--reject", check=1).stderr
