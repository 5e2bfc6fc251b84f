"""What metrics and logging add to one run, timed piece by piece (issue 16: under 2 % of make bench).

The A/B of bench/engine.py (on: LOG_FORMAT=json at INFO with PROMETHEUS_MULTIPROC_DIR; off: without)
is dominated by the noise of a shared machine; this measures the added work itself, per call, and
multiplies it by the calls of a 1,000,000-record run (20 batches of 50,000): per task one context
query and a Sentry/log scope, per batch one INFO line and two histogram observations, per run a
handful of counters and lines. Nothing is per record.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/integrations_bench .venv/bin/python bench/ops_overhead.py
"""

import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/integrations_bench"
)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ops-overhead-"))
os.environ["LOG_FORMAT"] = "json"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from integrations import logcontext, metrics, services, tasks  # noqa: E402
from integrations.models import Customer, SyncRun  # noqa: E402

N = 2000
RUN_RECORDS, BATCHES = 1_000_000, 20
TASKS = BATCHES + 6  # kick, process_run, validate x 20, apply, cleanup, run_finished, (sweep share)


def per_call(fn, n=N) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main():
    call_command("migrate", verbosity=0)
    Customer.objects.filter(slug="ops-overhead").delete()
    customer = services.customer_create(slug="ops-overhead", name="Ops overhead")
    integration = services.integration_create(customer=customer, slug="products", target="catalog.product")
    now = timezone.now()
    run = SyncRun.objects.create(
        integration=integration,
        mode="full",
        status=SyncRun.Status.SUCCEEDED,
        completed_at=now,
        started_at=now,
        finished_at=now,
        received=RUN_RECORDS,
    )
    run = SyncRun.objects.select_related("integration__customer").get(pk=run.pk)
    # the project's JSON handler, writing to memory instead of a terminal
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(io.StringIO())
    log = logging.getLogger("integrations")
    log.setLevel(logging.INFO)

    def task_scope():
        with logcontext.task_scope(task="validate_batch", batch_seq=1, **tasks._run_context(str(run.pk))):
            pass

    def log_line():
        with logcontext.bind(run_id=str(run.pk), task="apply_run"):
            log.info("run %s batch %s validated: %d valid, %d invalid", run.pk, 1, 50_000, 0)

    def batch_metrics():
        metrics.batch_accepted(seconds=0.2, records=50_000)

    def run_metrics():
        metrics._count_finished(run)
        metrics.QUEUE_WAIT.observe(1.0)

    costs = {
        name: per_call(fn)
        for name, fn in (
            ("task scope (one query)", task_scope),
            ("JSON log line", log_line),
            ("batch metrics", batch_metrics),
            ("run metrics", run_metrics),
        )
    }
    per_run = (
        costs["task scope (one query)"] * TASKS
        + costs["JSON log line"] * (BATCHES + 2)
        + costs["batch metrics"] * BATCHES
        + costs["run metrics"]
    )
    for name, cost in costs.items():
        print(f"{name:<24} {cost * 1e6:8.1f} µs per call")
    print(f"added per {RUN_RECORDS:,}-record run ({BATCHES} batches, {TASKS} tasks): {per_run * 1000:.1f} ms")
    for rate in (50_000, 100_000):
        seconds = RUN_RECORDS / rate
        print(f"  at {rate:,} records/s the run takes {seconds:.0f} s: {per_run / seconds:.3%} of it")
    inline_ab(integration)
    Customer.objects.filter(slug="ops-overhead").delete()


AB_ROUNDS = int(os.environ.get("AB_ROUNDS", 4))
AB_RECORDS = int(os.environ.get("AB_RECORDS", 200_000))


def inline_ab(integration, rounds=AB_ROUNDS, n=AB_RECORDS):
    """The engine itself, in this process (tasks inline), on and off alternately: an identical
    re-sync of n records, the cheapest run per record, so the fixed cost shows the most."""
    import contextlib
    import json

    from integrations.queue import inline

    batches = [
        json.dumps(
            {
                "seq": seq,
                "records": [
                    {
                        "sku": f"AB-{i:08d}",
                        "name": f"Product {i}",
                        "price": "9.99",
                        "currency": "EUR",
                        "quantity": i % 100,
                    }
                    for i in range(start, min(n, start + 50_000))
                ],
            }
        ).encode()
        for seq, start in enumerate(range(0, n, 50_000), start=1)
    ]
    events = ("run_finished", "run_started", "batch_accepted", "webhook_attempted", "sweeper_acted")
    on = {name: getattr(metrics, name) for name in events}
    on_scope, on_context = logcontext.task_scope, tasks._run_context
    log = logging.getLogger("integrations")

    def switch(enabled: bool):
        for name in events:
            setattr(metrics, name, on[name] if enabled else (lambda *a, **k: None))
        logcontext.task_scope = on_scope if enabled else (lambda **k: contextlib.nullcontext())
        tasks._run_context = on_context if enabled else (lambda run_id: {})
        log.setLevel(logging.INFO if enabled else logging.WARNING)

    def sync_once() -> float:
        t0 = time.perf_counter()
        with inline():
            run, _ = services.run_create(integration=integration, mode="full")
            for seq, body in enumerate(batches, start=1):
                services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")
            services.run_complete(run=run)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, (run.status, run.message)
        return time.perf_counter() - t0

    switch(True)
    sync_once()  # the first load; every timed run after it is an identical re-sync
    times = {True: [], False: []}
    for r in range(rounds):
        for enabled in (True, False) if r % 2 else (False, True):
            switch(enabled)
            times[enabled].append(sync_once())
    switch(True)
    best_on, best_off = min(times[True]), min(times[False])
    mean_on, mean_off = sum(times[True]) / rounds, sum(times[False]) / rounds
    print(f"inline A/B, identical re-sync of {n:,} records, {rounds} rounds each, alternating:")
    print(f"  off: best {best_off:.2f} s, mean {mean_off:.2f} s   on: best {best_on:.2f} s, mean {mean_on:.2f} s")
    print(f"  difference: best {best_on / best_off - 1:+.1%}, mean {mean_on / mean_off - 1:+.1%}")


if __name__ == "__main__":
    main()
