"""Prometheus metrics (SPEC section 14), every name prefixed `integrations_`.

Two kinds, for two kinds of truth:

- **Events** (counters, histograms) are counted where they happen, once per run, batch, webhook
  attempt or sweep, never per record: runs finished by status, records by outcome, run duration,
  queue wait, batch accept latency and size, webhook deliveries, the sweeper's actions. They happen
  in gunicorn workers and in django-q2 worker processes alike, so with PROMETHEUS_MULTIPROC_DIR set
  (one directory per machine, shared by the web and worker processes of that machine, emptied when
  the machine's processes start) every process writes its values to files there, and a scrape of
  any web process on that machine sums them (prometheus-client's multiprocess mode). A machine
  that runs only workers serves the same directory with `manage.py serve_metrics`.
- **State** (gauges) is read from the database at scrape time: runs by status (the live ones),
  the oldest queued run's age, runs held, stuck, behind schedule, integrations failing. The
  database is the one truth every machine shares, so no process has to keep these up to date, and
  a worker that died cannot leave a stale value behind. Every web process answers the same value:
  aggregate them with max(), not sum().

`integration` labels are `customer/integration` slugs: the endpoint is behind a bearer token.
"""

import hmac
import os

from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from . import conditions
from .conf import conf
from .models import SyncRun

OUTCOMES = ("received", "created", "updated", "unchanged", "deleted", "failed")
# multiprocess mode writes a file per process into this directory as soon as a metric exists
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
SECONDS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)

RUNS_FINISHED = Counter(
    "integrations_runs_finished", "Runs that reached an end state or review, by status", ["integration", "status"]
)
RECORDS = Counter("integrations_records", "Records of finished (non dry) runs by outcome", ["integration", "outcome"])
RUN_DURATION = Histogram(
    "integrations_run_duration_seconds", "From a run's start to its end state", ["status"], buckets=SECONDS
)
QUEUE_WAIT = Histogram(
    "integrations_run_queue_wait_seconds", "From `complete` to the start of processing", buckets=SECONDS
)
BATCH_ACCEPT = Histogram(
    "integrations_batch_accept_seconds",
    "Time to check, store and record one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "integrations_batch_records",
    "Records in one accepted batch",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000),
)
WEBHOOKS = Counter(
    "integrations_webhook_deliveries", "Webhook attempts by outcome (delivered, retry, failed)", ["outcome"]
)
SWEEPER = Counter("integrations_sweeper_actions", "What the sweeper did, by action", ["action"])


def integration_label(integration) -> str:
    return f"{integration.customer.slug}/{integration.slug}"


# --- events: called by the services, once per run / batch / attempt / sweep -----------------------


def run_finished(run: SyncRun) -> None:
    """Count a run's end state (or its hold for review) once its transaction has committed."""
    # robust: a metric must never fail the work it counts (the error is logged by Django)
    transaction.on_commit(lambda: _count_finished(run), robust=True)


def _count_finished(run: SyncRun) -> None:
    label = integration_label(run.integration)
    RUNS_FINISHED.labels(label, run.status).inc()
    if run.status not in SyncRun.END_STATES:
        return  # a held run counts its records when it ends
    if not run.dry_run:
        for outcome in OUTCOMES:
            RECORDS.labels(label, outcome).inc(getattr(run, outcome))
    if run.started_at and run.finished_at:
        RUN_DURATION.labels(run.status).observe((run.finished_at - run.started_at).total_seconds())


def run_started(run: SyncRun) -> None:
    if run.completed_at:
        wait = (timezone.now() - run.completed_at).total_seconds()
        transaction.on_commit(lambda: QUEUE_WAIT.observe(max(0.0, wait)), robust=True)


def batch_accepted(*, seconds: float, records: int) -> None:
    BATCH_ACCEPT.observe(seconds)
    BATCH_SIZE.observe(records)


def webhook_attempted(outcome: str) -> None:
    WEBHOOKS.labels(outcome).inc()


def sweeper_acted(done: dict[str, int]) -> None:
    for action, n in done.items():
        if n:
            SWEEPER.labels(action).inc(n)


# --- state: read from the database when scraped ------------------------------------------------


class RunStateCollector:
    def collect(self):
        now = timezone.now()
        runs = GaugeMetricFamily(
            "integrations_runs", "Runs in a live state now, by integration and status", labels=["integration", "status"]
        )
        rows = (
            SyncRun.objects.filter(status__in=SyncRun.UNFINISHED_STATES)
            .values("integration__customer__slug", "integration__slug", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            runs.add_metric(
                [f"{row['integration__customer__slug']}/{row['integration__slug']}", row["status"]], row["n"]
            )
        yield runs
        yield GaugeMetricFamily(
            "integrations_oldest_queued_run_age_seconds",
            "Seconds the longest-waiting completed run has been queued",
            value=conditions.oldest_queued_age(now),
        )
        counts = conditions.summary(now)
        yield GaugeMetricFamily("integrations_runs_held", "Runs held for review", value=counts["held"])
        yield GaugeMetricFamily(
            "integrations_runs_stuck", "Runs processing longer than INTEGRATIONS_STUCK_AFTER", value=counts["stuck"]
        )
        yield GaugeMetricFamily(
            "integrations_runs_behind", "Runs queued longer than INTEGRATIONS_BEHIND_AFTER", value=counts["behind"]
        )
        yield GaugeMetricFamily(
            "integrations_integrations_failing",
            "Integrations whose latest settled run failed or is held",
            value=counts["failing"],
        )


def scrape() -> bytes:
    """The text exposition: this machine's event metrics plus the state from the database."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    state = CollectorRegistry(auto_describe=False)
    state.register(RunStateCollector())
    return events_exposition(path) + generate_latest(state)


def events_exposition(path: str | None) -> bytes:
    if not path:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def authorized(header: str) -> bool:
    """`Authorization: Bearer <INTEGRATIONS_METRICS_TOKEN>`, compared in constant time."""
    keyword, _, given = (header or "").partition(" ")
    return keyword.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), conf.METRICS_TOKEN.encode())


UNAUTHORIZED = "a valid `Authorization: Bearer <INTEGRATIONS_METRICS_TOKEN>` is required\n"


@never_cache
def metrics_view(request):
    if not conf.METRICS_TOKEN:
        raise Http404("metrics are off: INTEGRATIONS_METRICS_TOKEN is not set")
    if not authorized(request.META.get("HTTP_AUTHORIZATION", "")):
        return HttpResponse(
            UNAUTHORIZED, status=401, content_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
