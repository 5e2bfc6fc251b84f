"""Two django-q2 clusters (the same queue, as two worker machines would be) process runs of two
integrations at once (SPEC rule 6): runs of one integration are applied one at a time in the
order they were completed; nothing is applied twice. Each run's counts depend on the run before
it, so a run applied out of order or twice shows in its counts and in the final table."""

import pytest
from integrations_client import Client

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun

from .conftest import wait_settled
from .stack import free_port

pytestmark = pytest.mark.slow

M = 20_000  # records per snapshot


def rec(i: int, rev: int) -> dict:
    return {"sku": f"TC-{i:06d}", "name": f"Product {i} rev {rev}", "price": f"{rev}.00", "currency": "EUR"}


# (mode, records, deletes, expected counts) in completion order
PLAN = [
    ("full", [rec(i, 1) for i in range(M)], [], {"created": M, "updated": 0, "deleted": 0}),
    ("full", [rec(i, 2) for i in range(M)], [], {"created": 0, "updated": M, "deleted": 0}),
    (
        "incremental",
        [rec(i, 3) for i in range(M, M + 2000)],
        [f"TC-{i:06d}" for i in range(1000)],
        {"created": 2000, "updated": 0, "deleted": 1000},
    ),
    ("full", [rec(i, 4) for i in range(1000, M + 2000)], [], {"created": 0, "updated": M + 1000, "deleted": 0}),
]


@pytest.mark.parametrize("broker", ["orm"], indirect=True)
def test_two_clusters_keep_order_per_integration_and_apply_nothing_twice(procs, tenant):
    customer_a, integration_a, key_a = tenant
    customer_b = services.customer_create(slug="faults-b", name="Faults B")
    integration_b = services.integration_create(customer=customer_b, slug="products", target="catalog.product")
    _, key_b = services.api_key_create(customer=customer_b)

    web = procs.web(free_port(), workers=2)
    clients = {"a": Client(web.url, key_a, timeout=(10, 120)), "b": Client(web.url, key_b, timeout=(10, 120))}
    # every run of both integrations is received first, then all are completed in one burst
    runs = {name: [] for name in clients}
    for name, client in clients.items():
        for mode, records, deletes, _ in PLAN:
            run = client.create_run("products", mode=mode)
            for seq, start in enumerate(range(0, len(records), 5000), start=1):
                chunk = records[start : start + 5000]
                client.post_batch(run["id"], chunk, seq=seq, deletes=deletes if seq == 1 else ())
            runs[name].append(run["id"])
    procs.cluster("cluster-1", workers=2)
    procs.cluster("cluster-2", workers=2)
    for step in range(len(PLAN)):
        for name, client in clients.items():
            client.complete(runs[name][step])

    for name, customer in (("a", customer_a), ("b", customer_b)):
        settled = [wait_settled(run_id, 300, procs) for run_id in runs[name]]
        for run, (_mode, records, _deletes, expected) in zip(settled, PLAN):
            assert run.status == SyncRun.Status.SUCCEEDED, (name, run.message)
            assert {k: getattr(run, k) for k in expected} == expected, (name, run.mode, run.message)
            assert run.received == len(records)
        # one at a time, in completion order
        for before, after in zip(settled, settled[1:]):
            assert before.completed_at < after.completed_at
            assert before.finished_at <= after.started_at, f"{after.pk} started before {before.pk} finished"
        rows = dict(Product.objects.filter(customer=customer).values_list("sku", "name"))
        assert rows == {r["sku"]: r["name"] for r in PLAN[3][1]}

    a = SyncRun.objects.filter(integration=integration_a)
    b = SyncRun.objects.filter(integration=integration_b)
    overlaps = sum(1 for x in a for y in b if x.started_at < y.finished_at and y.started_at < x.finished_at)
    print(
        f"\ntwo clusters: {a.count() + b.count()} runs settled; pairs of runs of the two integrations "
        f"processing at the same time: {overlaps}"
    )
