"""PostgreSQL crashes and comes back while a run is processing (batches half validated).

A private PostgreSQL cluster (initdb on a free port) is used so that the restart hurts nobody
else; `pg_ctl stop -m immediate` is a crash: no checkpoint, and crash recovery empties UNLOGGED
tables, the engine's staging table among them. Workers' tasks fail with connection errors; the
sweeper re-queues the run; the apply finds staged rows missing and validates the batches again.
The run must end `succeeded` with exact counts, or `failed` with nothing applied; then
services.run_retry must give a run with the exact result."""

import os
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import redis
from integrations_client import Client

from .conftest import REDIS_BASE, redis_available
from .stack import PrivatePostgres, Procs, base_env, free_port, pg_bindir, wait_for

pytestmark = pytest.mark.slow

N, BATCH = 100_000, 10_000
SETTLED = ("succeeded", "partial", "failed", "cancelled", "needs_review")


def products(n):
    for i in range(n):
        yield {"sku": f"PG-{i:07d}", "name": f"Product {i}", "price": "2.50", "currency": "EUR", "quantity": i % 9}


@pytest.fixture
def private_stack(tmp_path):
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and not Path("/usr/sbin/runuser").exists() and not Path("/sbin/runuser").exists():
        pytest.skip("running as root without runuser: cannot start a PostgreSQL server")
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_BASE}")
    pg = PrivatePostgres()
    procs = None
    cluster_name = f"faults-pg-{uuid.uuid4().hex[:8]}"
    try:
        pg.init()
        url = pg.create_database("faults_restart")
        media = tmp_path / "media"
        media.mkdir()
        procs = Procs(
            base_env(
                DATABASE_URL=url,
                REDIS_URL=REDIS_BASE,
                Q_CLUSTER_NAME=cluster_name,
                MEDIA_ROOT=str(media),
                INTEGRATIONS_REQUEUE_AFTER=5,
                Q_TIMEOUT=600,
                Q_RETRY=660,
            ),
            tmp_path / "logs",
        )
        procs.pg, procs.url = pg, url
        yield procs
    finally:
        if procs is not None:
            procs.stop_all()
        pg.destroy()
        try:
            r = redis.Redis.from_url(REDIS_BASE)
            for key in r.scan_iter(f"*{cluster_name}*"):
                r.delete(key)
        except Exception:
            pass


def query(url: str, sql: str, params=()):
    conn = psycopg2.connect(url, connect_timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def run_row(url: str, run_id: str) -> dict:
    cols = [
        "status",
        "received",
        "created",
        "updated",
        "unchanged",
        "deleted",
        "failed",
        "attempts",
        "batches_done",
        "message",
        "last_error",
    ]
    row = query(url, f"SELECT {', '.join(cols)} FROM integrations_syncrun WHERE id = %s", [run_id])[0]
    return dict(zip(cols, row))


def sweep_due_now(url: str) -> None:
    query(url, "UPDATE django_q_schedule SET next_run = now() - interval '1 second' WHERE name = 'integrations.sweep'")


def wait_run(procs, run_id, timeout):
    try:
        return wait_for(
            lambda: (r := run_row(procs.url, run_id))["status"] in SETTLED and r,
            timeout,
            f"run {run_id} to settle",
            interval=0.5,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {run_row(procs.url, run_id)}\n{procs.logs()}") from None


def staged_rows(url: str, run_id: str) -> int:
    tables = query(
        url, "SELECT relname FROM pg_class WHERE relname LIKE 'integrations_stage_catalog_product_%%' AND relkind = 'r'"
    )
    return sum(query(url, f'SELECT count(*) FROM "{t}" WHERE run_id = %s', [run_id])[0][0] for (t,) in tables)


# "immediate": a crash (UNLOGGED staging rows are lost, the apply must validate again);
# "fast": a clean restart that cuts every connection, with the sweeper allowed a single attempt,
# so a run whose tasks died fails cleanly and is then retried with services.run_retry.
@pytest.mark.parametrize("stop_mode, max_attempts", [("immediate", 5), ("fast", 1)])
def test_postgres_restart_while_a_run_is_processing_recovers_or_fails_cleanly_and_can_be_retried(
    private_stack, stop_mode, max_attempts
):
    procs = private_stack
    procs.env["INTEGRATIONS_MAX_ATTEMPTS"] = str(max_attempts)
    # the crash must meet a run in `processing` with batches validated: validation after `complete`
    # only (early validation would validate them while the run is still receiving or queued)
    procs.env["INTEGRATIONS_EARLY_VALIDATION"] = "false"
    procs.manage("migrate", "--noinput", "-v0")
    procs.manage("create_customer", "restart-co", "--name", "Restart Co")
    procs.manage("create_integration", "restart-co", "products", "--target", "catalog.product")
    key = procs.manage("create_api_key", "restart-co").stdout.strip().splitlines()[-1]
    web = procs.web(free_port(), workers=2)
    procs.cluster("cluster", workers=2)

    report = Client(web.url, key, timeout=(10, 120)).sync("products", products(N), batch_size=BATCH, wait=False)
    run_id = report.run_id
    wait_for(
        lambda: (r := run_row(procs.url, run_id))["batches_done"] >= 2 or r["status"] in SETTLED,
        180,
        "two batches to be validated",
        interval=0.1,
    )
    before = run_row(procs.url, run_id)
    assert before["status"] == "processing", f"the run settled before the crash: {before}"
    staged_before = staged_rows(procs.url, run_id)
    procs.pg.restart(mode=stop_mode, down_for=3)
    crashed_at = time.monotonic()
    staged_after = staged_rows(procs.url, run_id)
    if stop_mode == "immediate":
        assert staged_before > 0 and staged_after == 0  # crash recovery emptied the UNLOGGED staging table
    sweep_due_now(procs.url)
    run = wait_run(procs, run_id, 240)
    recovered_in = time.monotonic() - crashed_at
    products_now = query(procs.url, "SELECT count(*), count(DISTINCT sku) FROM catalog_product")[0]

    if run["status"] == "succeeded":
        path = "recovered"
        assert (run["received"], run["created"], run["failed"]) == (N, N, 0), run
        assert products_now == (N, N)
    else:
        path = f"failed cleanly ({run['message']!r}), then retried"
        assert run["status"] == "failed", run
        assert products_now == (0, 0), "a failed run applied rows"
        retry = procs.manage(
            "shell",
            "-c",
            "from integrations import services; from integrations.models import SyncRun; "
            f"print(services.run_retry(run=SyncRun.objects.get(pk='{run_id}')).pk)",
        )
        retry_id = retry.stdout.strip().splitlines()[-1]
        run = wait_run(procs, retry_id, 240)
        assert run["status"] == "succeeded", run
        assert (run["received"], run["created"]) == (N, N)
        assert query(procs.url, "SELECT count(*), count(DISTINCT sku) FROM catalog_product")[0] == (N, N)
    print(
        f"\npostgres {stop_mode} restart: batches validated before it {before['batches_done']}/{N // BATCH}; "
        f"staged rows {staged_before} -> {staged_after}; {path} in {recovered_in:.1f} s; attempts={run['attempts']}; "
        f"last_error={run['last_error']!r}"
    )
