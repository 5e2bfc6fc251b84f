"""kill -9 of the web process (gunicorn's master and workers) while a client posts batches.

The client (integrations_client.Client) meets refused and reset connections, retries with
backoff, and once gunicorn is back on the same port re-posts the same seq with the same bytes:
the server answers 200 for a batch it had already stored, 202 for one it had not. The run must
be whole: every seq once, every record once, nothing missing."""

import threading
import time
from pathlib import Path

import pytest
from integrations_client import Client, RetryPolicy

from catalog.models import Product
from integrations.models import SyncBatch, SyncRun

from .conftest import wait_settled
from .stack import free_port, wait_for

pytestmark = pytest.mark.slow

N, BATCH = 100_000, 5_000


def products(n):
    for i in range(n):
        yield {
            "sku": f"WEB-{i:07d}",
            "name": f"Product {i}",
            "price": f"{i % 1000}.50",
            "currency": "EUR",
            "quantity": i % 50,
        }


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_kill9_of_gunicorn_while_batches_are_posted_the_client_retries_and_the_run_is_whole(procs, tenant, settings):
    customer, integration, key = tenant
    port = free_port()
    procs.web(port, workers=2, name="web-1")
    procs.cluster("cluster", workers=2)
    answers: list[dict] = []
    outcome: dict = {}
    client = Client(
        f"http://127.0.0.1:{port}",
        key,
        timeout=(5, 60),
        retry=RetryPolicy(max_retries=12, base_delay=0.25, max_delay=2.0),
    )

    def send():
        try:
            outcome["report"] = client.sync(
                "products",
                products(N),
                batch_size=BATCH,
                wait=False,
                progress=lambda answer, sent: answers.append(answer),
            )
        except BaseException as exc:  # re-raised in the test's thread below
            outcome["error"] = exc

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    wait_for(
        lambda: SyncBatch.objects.filter(run__integration=integration).count() >= 5 or outcome,
        120,
        "five batches to arrive",
    )
    assert not outcome, f"the client finished before the kill: {outcome}"
    web1 = procs.started[0]
    web1.kill9()
    killed = time.monotonic()
    time.sleep(2)  # down for a moment: the client's connections are refused
    procs.web(port, workers=2, name="web-2")
    restarted_in = time.monotonic() - killed
    sender.join(timeout=300)
    assert not sender.is_alive(), "the client is still sending after 300 s"
    if "error" in outcome:
        raise AssertionError(f"the client gave up: {outcome['error']!r}\n{procs.logs()}")

    run_id = outcome["report"].run_id
    assert SyncRun.objects.filter(integration=integration).count() == 1
    run = wait_settled(run_id, 240, procs)
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert (run.received, run.created, run.failed) == (N, N, 0)
    batches = list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("seq", "received"))
    assert batches == [(seq, BATCH) for seq in range(1, N // BATCH + 1)]
    assert [a["seq"] for a in answers] == list(range(1, N // BATCH + 1))
    rows = Product.objects.filter(customer=customer)
    assert rows.count() == N
    assert set(rows.values_list("sku", flat=True)) == {r["sku"] for r in products(N)}
    stored = sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "integrations" / str(run.pk)).iterdir())
    print(
        f"\nweb kill: gunicorn back after {restarted_in:.1f} s; {len(batches)} batches, "
        f"{len(stored)} payload files (orphans of a killed request: {len(stored) - len(batches)})"
    )
