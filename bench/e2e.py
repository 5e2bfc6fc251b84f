"""make bench-e2e: the customer's wait, from the client's `sync()` call to its return (issues 14 and 17).

The real shape on this machine: gunicorn (3 workers) and one django-q2 cluster (2 workers), the
Python client in a process of its own, catalog.product records. Cases: (A) first load, (B) identical
re-sync, (C) 10 % changed, 5 % new, 5 % gone; for each format (json, protobuf) and each stack:
  sqlite    the zero-setup default: a fresh SQLite file (project.settings: WAL, busy timeout) and the
            django-q2 ORM broker, nothing else to install;
  postgres  PostgreSQL and the Redis broker.
Beside each case the plain-SQL ceiling on the same rows (another customer's rows of the same table),
in the same run and database: SQLite through Python's sqlite3 (executemany into a temp stage, one
INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE a column changed, one anti-join DELETE);
PostgreSQL through psycopg2 (COPY into a temp stage, prefilter unchanged, INSERT ... ON CONFLICT,
anti-join DELETE). The ceiling's input is prepared before its clock starts (it pays no encoding,
transport or validation). Peak RSS of the worker, web and client processes is sampled from /proc.

Environment: E2E_RECORDS (200000), E2E_STACKS (sqlite,postgres), E2E_FORMATS (json,protobuf),
E2E_CASES (A,B,C), E2E_REPEAT (3 rounds, the median reported), E2E_TIMELINE=1 (each batch's times), E2E_DATABASE_URL (postgres://postgres@127.0.0.1:5432/integrations_e2e, dropped and
created), E2E_REDIS_URL (redis://127.0.0.1:6379/6); E2E_SET_<NAME>=value sets <NAME> in the server's
processes (an A/B of a setting: E2E_SET_INTEGRATIONS_EARLY_VALIDATION=false). Results: stdout and bench/RESULTS.md.
"""

import datetime
import io
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.faults.stack import Procs, base_env, free_port  # noqa: E402

N = int(os.environ.get("E2E_RECORDS", 200_000))
STACKS = os.environ.get("E2E_STACKS", "sqlite,postgres").split(",")
FORMATS = os.environ.get("E2E_FORMATS", "json,protobuf").split(",")
CASES = os.environ.get("E2E_CASES", "A,B,C").split(",")
REPEAT = int(os.environ.get("E2E_REPEAT", 3))
TIMELINE = (
    os.environ.get("E2E_TIMELINE") == "1"
)  # print each batch's received / claimed / validated times  # each figure is the median of this many rounds
PG_URL = os.environ.get("E2E_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/integrations_e2e")
REDIS = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/6")
RESULTS = ROOT / "bench" / "RESULTS.md"
COLS = "customer_id, sku, name, price, currency, quantity, active, attributes"


# --- the records: generated lazily by the client, as lists for the ceiling -----------------------


# the prices' texts made once: formatting a float per record was a third of the records' cost, spent
# in the client's process inside sync() (the ceiling's rows are made before its clock starts)
PRICES = [[f"{j / 100 + rev:.2f}" for j in range(100_000)] for rev in (0, 1)]


def record(i: int, rev: int = 0) -> dict:
    return {
        "sku": f"SKU-{i:08d}",
        "name": f"Product {i} rev {rev}",
        "price": PRICES[rev][i % 100_000],
        "currency": "EUR",
        "quantity": i % 1000,
        "active": i % 11 != 0,
        "attributes": {"color": "red", "size": i % 7},
    }


def snapshot(case: str, n: int):
    if case in ("A", "B"):
        yield from (record(i) for i in range(n))
        return
    rng = random.Random(42)
    missing = set(rng.sample(range(n), n // 20))
    changed = set(rng.sample([i for i in range(n) if i not in missing], n // 10))
    yield from (record(i, 1 if i in changed else 0) for i in range(n) if i not in missing)
    yield from (record(n + i) for i in range(n // 20))


CLIENT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from bench.e2e import snapshot
from integrations_client import Client
client = Client({url!r}, {key!r}, format={fmt!r})
t0, wall0 = time.perf_counter(), time.time()
report = client.sync("products", snapshot({case!r}, {n}), poll_timeout=7200)
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across fork and exec, so a
# client started by a bench that holds the ceiling's rows would report the bench's memory as its own.
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "report": str(report), "start": wall0, "end": time.time(),
                  "peak_mb": peak_kb / 1024, "cpu": usage.ru_utime + usage.ru_stime}}))
"""


# --- peak memory: RSS of each process group, sampled -----------------------------------------------


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every core, every process) since boot."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postmaster() -> int | None:
    """The local PostgreSQL server's main process (each backend is its child, in a session of its
    own), or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                name, rest = stat.read().split(") ", 1)
            if name.endswith("(postgres") and rest.split()[1] == "1":  # its parent is init
                return int(pid)
        except (OSError, ValueError, IndexError):
            pass
    return None


class Peaks(threading.Thread):
    """Peak RSS and CPU time of each process group (the web, the worker), sampled from /proc; and
    the CPU time the machine spent meanwhile (the client's, the database's, everything's)."""

    def __init__(self, groups: dict, database: int | None = None):
        super().__init__(daemon=True)
        self.groups, self.peak, self.done = groups, dict.fromkeys(groups, 0.0), threading.Event()
        self.database = database  # the PostgreSQL server's main process: it and its children, CPU only
        self.cpu: dict[tuple[str, int], float] = {}  # (role, pid): CPU seconds, the last seen
        self.busy0 = busy_seconds()
        self.cpu0 = self._sample(initial=True)

    def _sample(self, initial: bool = False) -> dict:
        tick = os.sysconf("SC_CLK_TCK")
        seen = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                pgid = os.getpgid(int(pid))
                role = next((r for r, g in self.groups.items() if g == pgid), None)
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                if role is None and self.database in (int(pid), int(fields[1])):
                    role = "database"
                if role is None:
                    continue
                seen[(role, int(pid))] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
                if initial or role == "database":
                    continue
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        self.peak[role] = max(self.peak[role], int(line.split()[1]) / 1024)
            except (OSError, ProcessLookupError, IndexError, ValueError):
                pass
        return seen

    def run(self):
        while not self.done.wait(0.2):
            self.cpu.update(self._sample())

    def stop(self) -> dict:
        self.done.set()
        self.join()
        self.cpu.update(self._sample())
        self.busy = busy_seconds() - self.busy0
        return self.peak

    def cpu_seconds(self) -> dict:
        """CPU seconds each group spent between start and stop (a process that ended between two
        samples counts up to its last sample)."""
        out = dict.fromkeys([*self.groups, *(["database"] if self.database else [])], 0.0)
        for (role, pid), seconds in self.cpu.items():
            out[role] += seconds - self.cpu0.get((role, pid), 0.0)
        return out


# --- the ceilings ---------------------------------------------------------------------------------


def rows_of(case: str, owner: int) -> list[tuple]:
    return [
        (owner, r["sku"], r["name"], r["price"], r["currency"], r["quantity"], r["active"], json.dumps(r["attributes"]))
        for r in snapshot(case, N)
    ]


def sqlite_ceiling(path: str, case: str, owner: int) -> float:
    rows = rows_of(case, owner)
    db = sqlite3.connect(path, isolation_level=None, timeout=60)
    t0 = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "CREATE TEMP TABLE stage (customer_id integer, sku varchar(64), name varchar(200), "
        "price decimal, currency varchar(3), quantity integer, active bool, attributes text)"
    )
    db.executemany(f"INSERT INTO stage ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("CREATE INDEX temp.stage_sku ON stage (sku)")
    # "WHERE true": without it SQLite would read ON CONFLICT's ON as a join constraint
    db.execute(
        f"INSERT INTO catalog_product ({COLS}) SELECT {COLS} FROM stage WHERE true "
        "ON CONFLICT (customer_id, sku) DO UPDATE SET name = excluded.name, price = excluded.price, "
        "currency = excluded.currency, quantity = excluded.quantity, active = excluded.active, "
        "attributes = excluded.attributes, updated_at = CURRENT_TIMESTAMP "
        "WHERE name IS NOT excluded.name OR price IS NOT excluded.price OR currency IS NOT excluded.currency "
        "OR quantity IS NOT excluded.quantity OR active IS NOT excluded.active "
        "OR attributes IS NOT excluded.attributes"
    )
    db.execute(
        "DELETE FROM catalog_product WHERE customer_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM stage s WHERE s.sku = catalog_product.sku)",
        [owner],
    )
    db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    db.execute("DROP TABLE temp.stage")
    db.close()
    return seconds


def pg_ceiling(url: str, case: str, owner: int) -> float:
    import psycopg2

    lines = [
        f"{o}\t{sku}\t{name}\t{price}\t{cur}\t{qty}\t{'t' if active else 'f'}\t{attrs}\n"
        for o, sku, name, price, cur, qty, active, attrs in rows_of(case, owner)
    ]
    data, keys = "".join(lines).encode(), "".join(line.split("\t", 2)[1] + "\n" for line in lines).encode()
    conn = psycopg2.connect(url)
    t0 = time.perf_counter()
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE stage (customer_id bigint, sku varchar(64), name varchar(200), "
            "price numeric(12,2), currency varchar(3), quantity integer, active boolean, attributes jsonb) "
            "ON COMMIT DROP"
        )
        cur.copy_expert(f"COPY stage ({COLS}) FROM STDIN", io.BytesIO(data))
        cur.execute("CREATE INDEX ON stage (sku)")
        cur.execute("ANALYZE stage")
        cur.execute(
            "DELETE FROM stage s USING catalog_product t WHERE t.customer_id = s.customer_id "
            "AND t.sku = s.sku AND (t.name, t.price, t.currency, t.quantity, t.active, t.attributes) "
            "IS NOT DISTINCT FROM (s.name, s.price, s.currency, s.quantity, s.active, s.attributes)"
        )
        cur.execute(
            f"INSERT INTO catalog_product ({COLS}) SELECT {COLS} FROM stage "
            "ON CONFLICT (customer_id, sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price, "
            "currency = EXCLUDED.currency, quantity = EXCLUDED.quantity, active = EXCLUDED.active, "
            "attributes = EXCLUDED.attributes, updated_at = now()"
        )
        cur.execute("CREATE TEMP TABLE keys (sku varchar(64) PRIMARY KEY) ON COMMIT DROP")
        cur.copy_expert("COPY keys (sku) FROM STDIN", io.BytesIO(keys))
        cur.execute(
            "DELETE FROM catalog_product t WHERE t.customer_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM keys k WHERE k.sku = t.sku)",
            [owner],
        )
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds


# --- one stack ------------------------------------------------------------------------------------

SETUP = """
from integrations import services
c = services.customer_create(slug="e2e", name="E2E")
services.integration_create(customer=c, slug="products", target="catalog.product", max_deletes_percent=100)
ceiling = services.customer_create(slug="e2e-ceiling", name="E2E ceiling")
print(c.pk, ceiling.pk, services.api_key_create(customer=c, name="bench")[1])
"""


# where the customer's wait went: sending (to `complete`), validation left after `complete`, the apply,
# and the client noticing the end (times as epoch seconds)
PHASES = """
import json
from django.db.models import Max
from integrations.models import SyncBatch, SyncRun
run = SyncRun.objects.order_by("-created_at").first()
last = SyncBatch.objects.filter(run=run).aggregate(v=Max("validated_at"))["v"]
t = lambda d: d.timestamp() if d else None
batches = SyncBatch.objects.filter(run=run).order_by("seq").values_list("created_at", "validating_since", "validated_at")
from django_q.models import Task
tasks = Task.objects.filter(started__gte=run.created_at).order_by("started").values_list("func", "started", "stopped")
print(json.dumps({"completed": t(run.completed_at), "validated": t(last), "finished": t(run.finished_at),
                  "batches": [[t(d) for d in b] for b in batches],
                  "tasks": [[f.rsplit(".", 1)[-1], t(a), t(b)] for f, a, b in tasks]}))
"""


def phases(procs, out: dict) -> str:
    p = json.loads(procs.manage("shell", "-c", PHASES).stdout.strip().splitlines()[-1])
    validated = max(p["validated"] or p["completed"], p["completed"])
    if TIMELINE:  # each batch: received, claimed early (or not), validated; seconds from sync()
        rel = lambda v: "-" if v is None or v < 1e9 else f"{v - out['start']:.2f}"  # noqa: E731
        print("  batches (received/claimed/validated):", " ".join("/".join(map(rel, b)) for b in p["batches"]))
        print("  tasks (started-stopped):", " ".join(f"{f} {rel(a)}-{rel(b)}" for f, a, b in p["tasks"]))
        print(f"  completed {rel(p['completed'])}, finished {rel(p['finished'])}, noticed {rel(out['end'])}")
    return (
        f"send {p['completed'] - out['start']:.1f} s, validate after complete {validated - p['completed']:.1f} s, "
        f"apply {p['finished'] - validated:.1f} s, notice {out['end'] - p['finished']:.1f} s"
    )


def cpu_text(peaks: Peaks, out: dict) -> str:
    """Where the machine's CPU went during the case: the client (its own rusage, which includes the
    interpreter's start), the web and worker groups, everything else (the database, the broker)."""
    cpu = peaks.cpu_seconds()
    rest = peaks.busy - out["cpu"] - cpu["web"] - cpu["worker"]
    database = f"database {cpu['database']:.1f}, rest {rest - cpu['database']:.1f}" if "database" in cpu else ""
    return (
        f"CPU s: client {out['cpu']:.1f}, web {cpu['web']:.1f}, worker {cpu['worker']:.1f}, "
        f"{database or f'database and rest {rest:.1f}'}, of {peaks.busy:.1f} busy"
    )


def clear(stack: str, url: str, owners) -> None:
    sql = f"DELETE FROM catalog_product WHERE customer_id IN ({', '.join(str(o) for o in owners)})"
    if stack == "sqlite":
        db = sqlite3.connect(url, isolation_level=None, timeout=60)
        db.execute(sql)
        db.close()
    else:
        import psycopg2

        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(sql)
        conn.close()


def run_stack(stack: str) -> list[dict]:
    tmp = tempfile.mkdtemp(prefix=f"e2e-{stack}-")
    if stack == "sqlite":
        path = f"{tmp}/db.sqlite3"
        env = base_env(
            DATABASE_URL=f"sqlite:///{path}", MEDIA_ROOT=f"{tmp}/media", Q_CLUSTER_NAME=f"e2e-{uuid.uuid4().hex[:6]}"
        )
        target = path
        shape = "SQLite (project.settings: WAL, timeout 60 s), django-q2 ORM broker"
    else:
        import psycopg2

        conn = psycopg2.connect(PG_URL.rsplit("/", 1)[0] + "/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{PG_URL.rsplit("/", 1)[1]}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{PG_URL.rsplit("/", 1)[1]}"')
        conn.close()
        env = base_env(
            DATABASE_URL=PG_URL,
            REDIS_URL=REDIS,
            MEDIA_ROOT=f"{tmp}/media",
            Q_CLUSTER_NAME=f"e2e-{uuid.uuid4().hex[:6]}",
        )
        target = PG_URL
        shape = "PostgreSQL, django-q2 Redis broker"
    env.update({k[len("E2E_SET_") :]: v for k, v in os.environ.items() if k.startswith("E2E_SET_")})
    procs = Procs(env, log_dir=Path(tmp) / "logs")
    results = []
    try:
        procs.manage("migrate", "--noinput", timeout=600)
        owner, ceiling_owner, key = procs.manage("shell", "-c", SETUP).stdout.split()[-3:]
        web = procs.web(free_port(), workers=3)
        cluster = procs.cluster("cluster", workers=2)
        time.sleep(3)
        for fmt, _round in ((f, r) for f in FORMATS for r in range(REPEAT)):
            clear(stack, target, (owner, ceiling_owner))
            for case in CASES:
                server = postmaster() if stack == "postgres" else None
                peaks = Peaks({"web": web.popen.pid, "worker": cluster.popen.pid}, database=server)
                peaks.start()
                code = CLIENT.format(root=str(ROOT), url=web.url, key=key, fmt=fmt, case=case, n=N)
                client = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
                mem = peaks.stop()
                if client.returncode:
                    raise RuntimeError(f"client failed:\n{client.stderr[-3000:]}\n{procs.logs()}")
                out = json.loads(client.stdout.strip().splitlines()[-1])
                ceil = (sqlite_ceiling if stack == "sqlite" else pg_ceiling)(target, case, int(ceiling_owner))
                n = N  # C: 95 % of the rows kept and 5 % new
                row = {
                    "stack": stack,
                    "format": fmt,
                    "case": case,
                    "seconds": out["seconds"],
                    "ceiling": ceil,
                    "ratio": ceil / out["seconds"],
                    "records": n,
                    "report": out["report"],
                    "worker_mb": mem["worker"],
                    "web_mb": mem["web"],
                    "client_mb": out["peak_mb"],
                    "shape": shape,
                    "phases": phases(procs, out),
                    "cpu": cpu_text(peaks, out),
                }
                print(
                    f"{stack:8} {fmt:8} {case}: {out['seconds']:6.1f} s ({n / out['seconds']:,.0f} rec/s), ceiling "
                    f"{ceil:5.2f} s ({n / ceil:,.0f} rec/s), {row['ratio']:.0%}; peaks worker {mem['worker']:.0f} MB, "
                    f"web {mem['web']:.0f} MB, client {out['peak_mb']:.0f} MB | {row['phases']} | {row['cpu']} | {out['report']}",
                    flush=True,
                )
                results.append(row)
    finally:
        procs.stop_all()
    return results


def medians(results: list[dict]) -> list[dict]:
    """One row per (stack, format, case): the median time of the service and of the ceiling over
    the rounds, the highest peaks."""
    out = {}
    for r in results:
        out.setdefault((r["stack"], r["format"], r["case"]), []).append(r)
    rows = []
    for rounds in out.values():
        row = dict(rounds[0], rounds=len(rounds))
        for name in ("seconds", "ceiling"):
            row[name] = statistics.median(r[name] for r in rounds)
        for name in ("worker_mb", "web_mb", "client_mb"):
            row[name] = max(r[name] for r in rounds)
        row["ratio"] = row["ceiling"] / row["seconds"]
        rows.append(row)
    return rows


def write(results: list[dict]) -> None:
    names = {"A": "A first load", "B": "B identical re-sync", "C": "C 10 % changed, 5 % new, 5 % gone"}
    lines = [
        f"\n## make bench-e2e, {datetime.date.today().isoformat()}: {N:,} products, client sync() to its return\n",
        "gunicorn 3 workers, one django-q2 cluster of 2 workers, the Python client in its own process, all "
        "on one shared 2-core machine. Ceiling: plain SQL on the same rows in the same run and database "
        "(SQLite: sqlite3 executemany into a temp stage, one INSERT ... SELECT ... ON CONFLICT DO UPDATE "
        "WHERE changed, one anti-join DELETE; PostgreSQL: COPY, prefilter unchanged, upsert, anti-join DELETE). "
        f"Median of {REPEAT} round(s); peaks are the highest seen.\n",
        "| stack | format | case | the service | ceiling | ratio | worker / web / client peak |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in medians(results):
        lines.append(
            f"| {r['shape']} | {r['format']} | {names[r['case']]} | {r['seconds']:.1f} s "
            f"({r['records'] / r['seconds']:,.0f} rec/s) | {r['ceiling']:.2f} s "
            f"({r['records'] / r['ceiling']:,.0f} rec/s) | {r['ratio']:.0%} | "
            f"{r['worker_mb']:.0f} / {r['web_mb']:.0f} / {r['client_mb']:.0f} MB |"
        )
    with open(RESULTS, "a") as out:
        out.write("\n".join(lines) + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


def main() -> None:
    if CASES[0] != "A":  # each round starts from an empty table: without A, B would be a first load
        sys.exit("E2E_CASES: B and C re-sync what A loaded in the same round; list A first (A,B or A,C)")
    results = []
    for stack in STACKS:
        results += run_stack(stack)
    write(results)


if __name__ == "__main__":
    main()
