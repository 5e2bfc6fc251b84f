"""make load: a bounded load test of batch acceptance against the production shape, on loopback.

20 concurrent clients of 10 customers (two API keys each) post 10,000-record batches (protobuf,
gzip: what integrations_client sends) for 2 minutes to gunicorn (project.settings_production,
several workers) with two django-q2 clusters (Redis broker) and PostgreSQL behind it. Each client
opens a full run, posts LOAD_RUN_BATCHES batches, completes it, and starts the next, so the
workers validate and apply while the web accepts. Bounded: a fixed duration, a cap on requests,
and 127.0.0.1 only. Reported: accepted batches and records per second, p50/p95/p99 latency of
batch acceptance (202), throttled answers (429, honoured with Retry-After) and every other error
(must be none). The figures go to stdout and into docs/RELIABILITY.md between the load markers.

Environment: LOAD_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/faults_load; dropped and
created), LOAD_REDIS_URL (redis://127.0.0.1:6379/7), LOAD_SECONDS (120), LOAD_CLIENTS (20),
LOAD_CUSTOMERS (10), LOAD_BATCH_RECORDS (10000), LOAD_RUN_BATCHES (10), LOAD_WEB_WORKERS (4),
LOAD_Q_WORKERS (2 per cluster), LOAD_MAX_REQUESTS (20000). LOAD_METRICS_OUT=path: the web and the
clusters share a PROMETHEUS_MULTIPROC_DIR, and /metrics is scraped every LOAD_METRICS_EVERY seconds
(2) into that file (one JSON line per scrape) for docs/render_dashboard.py.
"""

import datetime
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/faults_load")
REDIS = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/7")
SECONDS = float(os.environ.get("LOAD_SECONDS", 120))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", 20))
CUSTOMERS = int(os.environ.get("LOAD_CUSTOMERS", 10))
BATCH = int(os.environ.get("LOAD_BATCH_RECORDS", 10_000))
RUN_BATCHES = int(os.environ.get("LOAD_RUN_BATCHES", 10))
WEB_WORKERS = int(os.environ.get("LOAD_WEB_WORKERS", 4))
Q_WORKERS = int(os.environ.get("LOAD_Q_WORKERS", 2))
MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", 20_000))
# LOAD_COMPLETE=0: runs are never completed, so the workers stay idle (acceptance alone);
# LOAD_LABEL names the section of RELIABILITY.md the figures go to (default: the main one)
COMPLETE = os.environ.get("LOAD_COMPLETE", "1") != "0"
METRICS_OUT = os.environ.get("LOAD_METRICS_OUT", "")
METRICS_EVERY = float(os.environ.get("LOAD_METRICS_EVERY", 2))
LABEL = os.environ.get("LOAD_LABEL", "")
RELIABILITY = ROOT / "docs" / "RELIABILITY.md"
CLUSTER = f"load-{uuid.uuid4().hex[:8]}"


def recreate_database() -> None:
    import psycopg2

    name = DB_URL.rsplit("/", 1)[1]
    conn = psycopg2.connect(DB_URL.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


recreate_database()
MEDIA = tempfile.mkdtemp(prefix="load-media-")
os.environ.update(
    {
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS,
        "MEDIA_ROOT": MEDIA,
        "Q_CLUSTER_NAME": CLUSTER,
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
)

import django  # noqa: E402

django.setup()
import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from integrations_client import BatchEncoder  # noqa: E402

from integrations import services  # noqa: E402
from integrations.models import SyncRun  # noqa: E402
from tests.faults.stack import Procs, base_env, free_port  # noqa: E402

call_command("migrate", verbosity=0)


def record(i: int) -> dict:
    return {
        "sku": f"LOAD-{i:08d}",
        "name": f"Product {i}",
        "price": f"{(i % 100000) / 100:.2f}",
        "currency": "EUR",
        "quantity": i % 1000,
        "active": i % 11 != 0,
        "attributes": {"color": "red", "size": i % 7},
    }


def encode_bodies() -> list:
    """The batches of one run, encoded once (seq 1..RUN_BATCHES): every client posts the same bytes."""
    bodies = []
    for seq in range(1, RUN_BATCHES + 1):
        encoder = BatchEncoder("protobuf", compress=True)
        for i in range((seq - 1) * BATCH, seq * BATCH):
            encoder.add(record(i))
        bodies.append(encoder.finish(seq))
    return bodies


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []  # accepted batches (202 or 200)
        self.throttled = 0
        self.errors: list[str] = []
        self.requests = 0
        self.runs_completed: list[str] = []

    def take_request(self) -> bool:
        with self.lock:
            if self.requests >= MAX_REQUESTS:
                return False
            self.requests += 1
            return True


def client_loop(url: str, key: str, bodies, deadline: float, stats: Stats) -> None:
    assert url.startswith("http://127.0.0.1:"), "loopback only"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"

    def call(method, path, **kwargs):
        """One API call; a 429 waits Retry-After and tries again (counted, not an error)."""
        while time.monotonic() < deadline and stats.take_request():
            started = time.perf_counter()
            try:
                answer = session.request(method, url + path, timeout=(5, 60), **kwargs)
            except requests.RequestException as exc:
                with stats.lock:
                    stats.errors.append(f"{method} {path}: {exc!r}")
                return None, 0.0
            elapsed = time.perf_counter() - started
            if answer.status_code == 429:
                with stats.lock:
                    stats.throttled += 1
                time.sleep(float(answer.headers.get("Retry-After", 1)))
                continue
            if answer.status_code >= 300:
                with stats.lock:
                    stats.errors.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
                return None, elapsed
            return answer, elapsed
        return None, 0.0

    while time.monotonic() < deadline:
        answer, _ = call(
            "POST",
            "/api/v1/integrations/products/runs/",
            json={"mode": "full"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if answer is None:
            return
        run_id = answer.json()["id"]
        for batch in bodies:
            answer, elapsed = call("POST", f"/api/v1/runs/{run_id}/batches/", data=batch.body, headers=batch.headers)
            if answer is None:
                return  # the deadline (the run stays receiving; the report counts only accepted batches)
            with stats.lock:
                stats.latencies.append(elapsed)
        if not COMPLETE:
            continue
        answer, _ = call("POST", f"/api/v1/runs/{run_id}/complete/", json={"batches": len(bodies)})
        if answer is None:
            return
        with stats.lock:
            stats.runs_completed.append(run_id)


def scrape_loop(url: str, token: str, out: Path, stop: threading.Event) -> None:
    """Scrape /metrics as Prometheus would, keeping every answer with its time."""
    import json

    with out.open("w") as fh:
        while not stop.wait(METRICS_EVERY):
            try:
                text = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
            except requests.RequestException:
                continue
            fh.write(json.dumps({"t": time.time(), "text": text}) + "\n")
            fh.flush()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    keys = []
    for c in range(CUSTOMERS):
        customer = services.customer_create(slug=f"load-{c:02d}", name=f"Load customer {c}")
        services.integration_create(
            customer=customer, slug="products", target="catalog.product", max_deletes_percent=100
        )
        for k in range(CLIENTS // CUSTOMERS + (1 if c < CLIENTS % CUSTOMERS else 0)):
            keys.append(services.api_key_create(customer=customer, name=f"client {k}")[1])
    print(f"encoding {RUN_BATCHES} batches of {BATCH} records ...", flush=True)
    bodies = encode_bodies()
    body_kb = statistics.mean(len(b.body) for b in bodies) / 1024

    env = base_env(
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS,
        MEDIA_ROOT=MEDIA,
        Q_CLUSTER_NAME=CLUSTER,
        DJANGO_SETTINGS_MODULE="project.settings_production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE=None,
    )
    env.pop("INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE", None)
    metrics_token = secrets.token_urlsafe(24)
    if METRICS_OUT:
        env.update(
            PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="load-prometheus-"),
            INTEGRATIONS_METRICS_TOKEN=metrics_token,
        )
    scraping = threading.Event()
    procs = Procs(env)
    try:
        procs.manage("collectstatic", "--noinput", "-v0")
        web = procs.web(free_port(), workers=WEB_WORKERS)
        procs.cluster("cluster-1", workers=Q_WORKERS)
        procs.cluster("cluster-2", workers=Q_WORKERS)
        time.sleep(2)
        if METRICS_OUT:
            threading.Thread(
                target=scrape_loop, args=(web.url, metrics_token, Path(METRICS_OUT), scraping), daemon=True
            ).start()
        stats = Stats()
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [
            threading.Thread(target=client_loop, args=(web.url, key, bodies, deadline, stats), daemon=True)
            for key in keys[:CLIENTS]
        ]
        print(f"{len(threads)} clients of {CUSTOMERS} customers posting for {SECONDS:.0f} s ...", flush=True)
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)
        wall = time.monotonic() - started
        runs = SyncRun.objects.filter(pk__in=stats.runs_completed)
        settled = runs.filter(status__in=SyncRun.END_STATES).count()
        applied = sum(runs.filter(status=SyncRun.Status.SUCCEEDED).values_list("received", flat=True))
        bad_runs = list(
            runs.exclude(
                status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.QUEUED, SyncRun.Status.PROCESSING]
            ).values_list("status", "message")
        )
        if METRICS_OUT:
            time.sleep(3 * METRICS_EVERY)  # the last runs settle into the picture
    finally:
        scraping.set()
        procs.stop_all()

    lat = stats.latencies
    figures = {
        "date": datetime.date.today().isoformat(),
        "duration": f"{wall:.0f} s",
        "clients": f"{len(threads)} clients, {CUSTOMERS} customers (one key per client)",
        "shape": f"gunicorn {WEB_WORKERS} sync workers (project.settings_production, whitenoise), 2 django-q2 "
        f"clusters x {Q_WORKERS} workers, Redis broker and cache, PostgreSQL 15, local MEDIA_ROOT; "
        f"all on one shared 2-core machine with the load generator",
        "batch": f"{BATCH:,} records, protobuf + gzip, {body_kb:.0f} KiB on the wire; {RUN_BATCHES} batches per run"
        + ("" if COMPLETE else " (runs never completed: workers idle)"),
        "accepted": f"{len(lat):,} batches = {len(lat) * BATCH:,} records",
        "throughput": f"{len(lat) / wall:.1f} batches/s = {len(lat) * BATCH / wall:,.0f} records/s accepted",
        "latency": (
            f"p50 {percentile(lat, 50) * 1000:.0f} ms, p95 {percentile(lat, 95) * 1000:.0f} ms, "
            f"p99 {percentile(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        )
        if lat
        else "n/a",
        "throttled": f"{stats.throttled} answers 429 (Retry-After honoured)",
        "errors": f"{len(stats.errors)} other errors" + (f": {stats.errors[:5]}" if stats.errors else ""),
        "runs": (
            f"{len(stats.runs_completed)} runs completed; {settled} settled by the end of the window, "
            f"{applied:,} records applied by the workers meanwhile; failed/held/cancelled: {len(bad_runs)}"
            + (f" {bad_runs[:3]}" if bad_runs else "")
        ),
    }
    table = "\n".join(f"| {k} | {v} |" for k, v in figures.items())
    print(table)
    marker = "load" + (f"-{LABEL}" if LABEL else "")
    section = f"<!-- {marker}:begin -->\n| | |\n|---|---|\n{table}\n<!-- {marker}:end -->"
    text = RELIABILITY.read_text() if RELIABILITY.exists() else ""
    pattern = rf"<!-- {re.escape(marker)}:begin -->.*?<!-- {re.escape(marker)}:end -->"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RELIABILITY.write_text(text)
    print(f"written to {RELIABILITY.relative_to(ROOT)}")
    if stats.errors or bad_runs:
        sys.exit(1)


if __name__ == "__main__":
    main()
