"""kill -9 of the django-q2 cluster while an undo is being applied (SPEC 13 with rules 1 and 8).

A customer has N products; a full snapshot changed 10 %, dropped 5 % and added 5 % of them. Its
undo is queued, and when the undo's transaction has written to the table the whole cluster is
killed with SIGKILL. The table must be exactly as the run left it (the undo never committed); a
new cluster is started, the sweeper re-queues the undo, and it must end with exactly the table as
it was before the run, and the counts of an undisturbed undo."""

import json
import time

import psycopg2
import pytest

from catalog.models import Product
from integrations import services
from integrations.models import SyncRun

from .conftest import db_url, sweep_due_now, wait_settled
from .test_fault_worker_kill import N, record, seed, snapshot, table_state

pytestmark = pytest.mark.slow


def undo_writing(dsn: str) -> bool:
    """A transaction other than ours has written and is working on the products table."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND query LIKE %s",
            ['%"catalog_product"%'],
        )
        return cur.fetchone()[0] > 0


def send(integration, records, batch_size=50_000) -> SyncRun:
    run, _ = services.run_create(integration=integration, mode="full")
    for seq, start in enumerate(range(0, len(records), batch_size), start=1):
        body = json.dumps({"seq": seq, "records": records[start : start + batch_size]}).encode()
        services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")
    services.run_complete(run=run)
    return run


def test_kill9_during_an_undo_leaves_the_run_applied_and_the_undo_recovers_exactly(procs, tenant):
    from .stack import wait_for

    customer, integration, _ = tenant
    seed(customer, N)
    before = table_state(customer)
    first = procs.cluster("cluster-1", workers=2)
    run = wait_settled(send(integration, list(snapshot())).pk, 600, procs)
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    after_run = table_state(customer)
    assert after_run != before and after_run[record(N)["sku"]]

    undo = services.run_undo(run=run, user="faults")
    dsn = db_url()
    wait_for(
        lambda: undo_writing(dsn) or SyncRun.objects.get(pk=undo.pk).status in SyncRun.END_STATES,
        300,
        "the undo to write",
        interval=0.02,
    )
    undo.refresh_from_db()
    assert undo.status == SyncRun.Status.PROCESSING, f"the undo ended before the kill ({undo.status}): make N larger"
    first.kill9()
    killed_at = time.monotonic()

    assert table_state(customer) == after_run  # all or nothing: nothing of the undo is visible
    procs.cluster("cluster-2", workers=2)
    sweep_due_now()
    undo = wait_settled(undo.pk, 600, procs)
    assert undo.status == SyncRun.Status.SUCCEEDED, undo.message
    assert (undo.created, undo.updated, undo.deleted) == (N // 20, N // 10, N // 20)
    assert table_state(customer) == before
    assert Product.objects.filter(customer=customer).count() == N
    print(f"\nundo kill: N={N}, recovered in {time.monotonic() - killed_at:.1f} s, attempts={undo.attempts}")
