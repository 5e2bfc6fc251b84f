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
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/integrations_bench")
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
    run = SyncRun.objects.create(integration=integration, mode="full", status=SyncRun.Status.SUCCEEDED,
                                 completed_at=now, started_at=now, finished_at=now, received=RUN_RECORDS)
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

    costs = {name: per_call(fn) for name, fn in
             (("task scope (one query)", task_scope), ("JSON log line", log_line),
              ("batch metrics", batch_metrics), ("run metrics", run_metrics))}
    per_run = (costs["task scope (one query)"] * TASKS + costs["JSON log line"] * (BATCHES + 2)
               + costs["batch metrics"] * BATCHES + costs["run metrics"])
    for name, cost in costs.items():
        print(f"{name:<24} {cost * 1e6:8.1f} µs per call")
    print(f"added per {RUN_RECORDS:,}-record run ({BATCHES} batches, {TASKS} tasks): {per_run * 1000:.1f} ms")
    for rate in (50_000, 100_000):
        seconds = RUN_RECORDS / rate
        print(f"  at {rate:,} records/s the run takes {seconds:.0f} s: {per_run / seconds:.3%} of it")
    Customer.objects.filter(slug="ops-overhead").delete()


if __name__ == "__main__":
    main()
