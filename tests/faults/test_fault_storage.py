"""Unwritable or full storage when a batch (or a file) arrives: a clear 503 JSON error body
(`storage_unavailable`), nothing recorded that was not stored, and the client's retry of the same
batch succeeds once storage is back.

Root ignores file permissions, so "unwritable" is made the way it really happens: MEDIA_ROOT
under a path whose parent is a regular file (a missing or wrongly mounted volume), and a full
disk: a 1 MiB tmpfs mounted for the test (skipped where mounting is not permitted)."""

import gzip
import json
import subprocess
from pathlib import Path

import pytest
import requests

from catalog.models import Product
from integrations.models import SyncBatch, SyncRun

from .conftest import wait_settled
from .stack import free_port

pytestmark = pytest.mark.slow


def batch_body(seq: int, n: int, start: int = 0) -> bytes:
    records = [
        {"sku": f"ST-{i:06d}", "name": f"Stored product {i} " + "x" * 60, "price": "1.00", "currency": "EUR"}
        for i in range(start, start + n)
    ]
    return json.dumps({"seq": seq, "records": records}).encode()


def open_run(url: str, key: str) -> str:
    answer = requests.post(
        f"{url}/api/v1/integrations/products/runs/",
        json={"mode": "incremental"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def post(url: str, key: str, run_id: str, body: bytes, **headers) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/runs/{run_id}/batches/",
        data=body,
        timeout=60,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )


def assert_storage_503(answer: requests.Response) -> dict:
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["code"] == "storage_unavailable"
    assert error["message"].startswith("could not store the")
    return error


@pytest.mark.parametrize("broker", ["orm"], indirect=True)
def test_media_root_that_cannot_exist_answers_503_and_records_nothing(procs, tenant, tmp_path):
    customer, integration, key = tenant
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the volume should be mounted")
    web = procs.web(free_port(), workers=1, MEDIA_ROOT=str(blocker / "media"))
    run_id = open_run(web.url, key)

    assert_storage_503(post(web.url, key, run_id, batch_body(1, 100)))
    assert_storage_503(post(web.url, key, run_id, gzip.compress(batch_body(1, 100)), **{"Content-Encoding": "gzip"}))
    run = SyncRun.objects.get(pk=run_id)
    assert run.status == SyncRun.Status.RECEIVING and not SyncBatch.objects.filter(run=run).exists()

    upload = requests.post(
        f"{web.url}/api/v1/integrations/products/uploads/",
        timeout=60,
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("p.ndjson", b'{"sku": "U-1", "name": "U", "price": 1, "currency": "EUR"}\n')},
    )
    assert_storage_503(upload)
    assert SyncRun.objects.filter(integration=integration).count() == 1  # no run for the refused file

    complete = requests.post(
        f"{web.url}/api/v1/runs/{run_id}/complete/",
        json={"batches": 1},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert complete.status_code == 409  # the integrity check: the batch the client sent was never accepted


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount_point)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


@pytest.mark.parametrize("broker", ["orm"], indirect=True)
def test_a_full_disk_answers_503_and_the_same_batch_is_accepted_once_there_is_room(procs, tenant, tiny_tmpfs, settings):
    customer, integration, key = tenant
    media = tiny_tmpfs / "media"
    media.mkdir()
    settings.MEDIA_ROOT = str(media)  # the workers read what the web stored
    procs.env["MEDIA_ROOT"] = str(media)
    web = procs.web(free_port(), workers=1)
    procs.cluster("cluster", workers=1)
    run_id = open_run(web.url, key)

    small = batch_body(1, 500)  # ~60 KB
    assert post(web.url, key, run_id, small).status_code == 202
    big = batch_body(2, 10_000, start=500)  # ~1.2 MB: does not fit in what is left
    assert len(big) > 1024 * 1024
    assert_storage_503(post(web.url, key, run_id, big))
    run = SyncRun.objects.get(pk=run_id)
    assert run.status == SyncRun.Status.RECEIVING
    assert list(SyncBatch.objects.filter(run=run).values_list("seq", flat=True)) == [1]
    leftovers = sorted(p.name for p in Path(media, "integrations", run_id).iterdir())
    assert len(leftovers) == 1, f"a partial file of the refused batch was left behind: {leftovers}"

    # room again (the operator grows the volume): the same bytes under the same seq are accepted
    subprocess.run(["mount", "-o", "remount,size=8M", str(tiny_tmpfs)], check=True, timeout=30)
    assert post(web.url, key, run_id, big).status_code == 202
    complete = requests.post(
        f"{web.url}/api/v1/runs/{run_id}/complete/",
        json={"batches": 2, "records": 10_500},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert complete.status_code == 202, complete.text
    run = wait_settled(run_id, 180, procs)
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert (run.received, run.created) == (10_500, 10_500)
    assert Product.objects.filter(customer=customer).count() == 10_500
