"""The real worker path: a `manage.py qcluster` process (ORM broker) picks up the tasks of runs
created here, validates batches in parallel and applies; order per integration holds."""

import pytest
from django.conf import settings

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun
from tests.support import product
from tests.support.processes import post, qcluster, wait_for

pytestmark = pytest.mark.slow  # a real qcluster process
S = SyncRun.Status


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    with qcluster(2, INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE="true") as proc:
        yield proc


def test_worker_processes_runs_in_order(worker, integration, customer):
    assert settings.Q_CLUSTER.get("orm") == "default"
    first, _ = services.run_create(integration=integration)
    for seq in range(1, 4):
        post(first, seq, [product(f"S{seq}-{i}") for i in range(200)])
    second, _ = services.run_create(integration=integration, mode="incremental")
    post(second, 1, [product("S1-0", name="second")], deletes=["S3-0"])
    services.run_complete(run=first)
    services.run_complete(run=second)
    wait_for(first, *SyncRun.END_STATES)
    wait_for(second, *SyncRun.END_STATES)
    assert first.status == S.SUCCEEDED and first.created == 600 and first.batches_done == 3
    assert second.status == S.SUCCEEDED and (second.updated, second.deleted) == (1, 1)
    assert second.started_at >= first.finished_at  # applied after the first, one at a time
    assert Product.objects.filter(customer=customer).count() == 599
    assert Product.objects.get(customer=customer, sku="S1-0").name == "second"


def test_worker_holds_and_applies_after_review(worker, integration, customer):
    seed, _ = services.run_create(integration=integration)
    post(seed, 1, [product(f"P{i}") for i in range(30)])
    services.run_complete(run=seed)
    wait_for(seed, S.SUCCEEDED)
    held, _ = services.run_create(integration=integration)
    post(held, 1, [product("P0")])
    services.run_complete(run=held)
    wait_for(held, S.NEEDS_REVIEW)
    assert Product.objects.filter(customer=customer).count() == 30
    services.run_review(run=held, approve=True, user="test")
    wait_for(held, S.SUCCEEDED)
    assert list(Product.objects.filter(customer=customer).values_list("sku", flat=True)) == ["P0"]
