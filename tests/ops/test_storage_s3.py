"""Raw payloads in S3 (django-storages) against moto's server on loopback: a real HTTP S3 endpoint.
A batch and an upload are stored, processed and purged; nothing lands on local disk."""

import io
import os
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import time_machine
from django.core.files.storage import default_storage, storages
from django.utils import timezone

from catalog.models import Product
from integrations import services
from integrations.models import SyncBatch, SyncRun
from integrations.retention import purge_sync_data
from tests.support import product, sync

BUCKET = "integrations-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, settings):
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "file_overwrite": True,
                "default_acl": None,
            },
        },
    }
    yield client
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for obj in objects:
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def local_files(settings):
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_batch_is_stored_processed_and_purged_in_s3(s3, integration, customer, settings):
    from storages.backends.s3 import S3Storage

    assert isinstance(storages["default"], S3Storage)
    default_storage.exists("x")  # the lazy default storage follows the override too
    assert isinstance(default_storage._wrapped, S3Storage)
    run = sync(integration, [product("A"), product("B")], [product("C")])
    assert run.status == SyncRun.Status.SUCCEEDED and run.created == 3
    assert set(Product.objects.filter(customer=customer).values_list("sku", flat=True)) == {"A", "B", "C"}
    names = list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("payload", flat=True))
    assert keys(s3) == sorted(names)
    body = s3.get_object(Bucket=BUCKET, Key=names[0])["Body"].read()
    assert b'"sku": "A"' in body or b'"sku":"A"' in body
    assert local_files(settings) == []

    with time_machine.travel(timezone.now() + timedelta(days=31), tick=True):
        report = purge_sync_data()
    assert report["files_deleted"] == 2
    assert keys(s3) == []
    assert all(b.payload_purged_at for b in SyncBatch.objects.filter(run=run))


def test_an_upload_streams_through_s3(s3, integration, customer, settings):
    settings.INTEGRATIONS_UPLOAD_BATCH_RECORDS = 2
    ndjson = "".join(f'{{"sku": "U{i}", "name": "U{i}", "price": "1.50", "currency": "EUR"}}\n' for i in range(5))
    run = services.upload_create(integration=integration, stream=io.BytesIO(ndjson.encode()), filename="p.ndjson")
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.created == 5 and run.batches_total == 3
    assert run.upload_name in keys(s3)
    assert len(keys(s3)) == 4  # the file and its three parts
    assert local_files(settings) == []

    with time_machine.travel(timezone.now() + timedelta(days=181), tick=True):
        report = purge_sync_data()
    assert report["runs_deleted"] == 1 and report["files_deleted"] == 4
    assert keys(s3) == []
    assert Product.objects.filter(customer=customer).count() == 5  # the data stays, only the raw bytes go


def test_the_settings_switch_to_s3_from_the_environment(s3):
    """project/settings.py builds working S3 options from the AWS_* variables."""
    import subprocess
    import sys

    endpoint = s3.meta.endpoint_url
    env = {
        **os.environ,
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_REGION_NAME": "us-east-1",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    code = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "from integrations import storage\n"
        "s = storages['default']\n"
        "name = storage.save_bytes('integrations/check/one.json', b'{}')\n"
        "print(type(s).__name__, s.bucket_name, name, storage.read_payload(name).decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert out == ["S3Storage", BUCKET, "integrations/check/one.json", "{}"]
    assert keys(s3) == ["integrations/check/one.json"]
