"""make bench: the sync engine on PostgreSQL against the raw COPY + upsert ceiling, in one run.

One customer's full snapshot of catalog.product (BENCH_RECORDS, default 1,000,000) while another
customer's 100,000 rows sit beside it; cases (A) first load, (B) identical re-sync, (C) 10% changed,
5% new, 5% missing. The engine is timed from `complete` to the end state with a real django-q2
cluster (2 workers, Redis broker) doing the work; the worker's peak RSS is sampled from /proc.
The ceiling is plain SQL on the same rows: COPY of pre-encoded text into a temp staging table,
anti-join away unchanged rows, one INSERT ... ON CONFLICT DO UPDATE, one DELETE ... NOT EXISTS.
Then crm.contact (SPEC 12): BENCH_CONTACTS (default BENCH_RECORDS) contacts of an integer key, each
referencing one of the customer's 100 categories; cases (A) first load and (B) identical re-sync,
against a ceiling that resolves the reference by a join to crm_category in the same statement.
BENCH_CASES=product or =contact runs one half only.
Journal cost (SPEC 13, issue 15), catalog.product only: before the cases above, the same sequence
(ceiling then engine, case by case, on the same data, from the same table state: the bench and ceiling
owners' rows removed, VACUUM ANALYZE) runs BENCH_JOURNAL_ROUNDS times (default 3), alternating a cluster
started with INTEGRATIONS_BENCH_NO_JOURNAL=1 and one with the journal: off, on, off; the cases above are
the last journal-on round. The cost is the median on against the median off: a difference of two noisy
times, measured on both sides early and late in the bench. Then case C is undone through the service and the worker (as `undo_run RUN --yes` does),
timed from the undo's creation to its end state, and the table is checked against its state before C.
Results go to stdout and bench/RESULTS.md.
"""

import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N = int(os.environ.get("BENCH_RECORDS", 1_000_000))
NEIGHBOUR_ROWS = int(os.environ.get("BENCH_NEIGHBOUR_ROWS", 100_000))
CONTACTS = int(os.environ.get("BENCH_CONTACTS", N))
CASES = os.environ.get("BENCH_CASES", "product,contact").split(",")
CATEGORIES = 100
# journal cost: rounds before the main cases, alternating off, on, off, ... (the main cases are one more on)
JOURNAL_ROUNDS = int(os.environ.get("BENCH_JOURNAL_ROUNDS", 3))
BATCH = 50_000
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/integrations_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
MEDIA = tempfile.mkdtemp(prefix="bench-media-")
ENV = {
    "Q_CLUSTER_NAME": "bench",
    **os.environ,
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS,
    "MEDIA_ROOT": MEDIA,
    "Q_WORKERS": "2",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "CACHE_URL": "locmemcache://",
}
os.environ.update(ENV)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


def ensure_database():
    import psycopg2

    name = DB_URL.rsplit("/", 1)[1]
    conn = psycopg2.connect(DB_URL.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


ensure_database()
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0)

from catalog.models import Product  # noqa: E402
from crm.models import Category, Contact  # noqa: E402
from integrations import services  # noqa: E402
from integrations.models import Customer, SyncRun  # noqa: E402


def record(i: int, rev: int = 0) -> dict:
    return {
        "sku": f"SKU-{i:08d}",
        "name": f"Product {i} rev {rev}",
        "price": f"{(i % 100000) / 100 + rev:.2f}",
        "currency": "EUR",
        "quantity": i % 1000,
        "active": i % 11 != 0,
        "attributes": {"color": "red", "size": i % 7},
    }


def snapshot(case: str) -> list[dict]:
    if case in ("A", "B"):
        return [record(i) for i in range(N)]
    rng = random.Random(42)
    missing = set(rng.sample(range(N), N // 20))
    changed = set(rng.sample([i for i in range(N) if i not in missing], N // 10))
    out = [record(i, 1 if i in changed else 0) for i in range(N) if i not in missing]
    out += [record(N + i) for i in range(N // 20)]
    return out


def copy_text(records: list[dict], owner_id: int) -> bytes:
    lines = []
    for r in records:
        lines.append(
            f"{owner_id}\t{r['sku']}\t{r['name']}\t{r['price']}\t{r['currency']}\t{r['quantity']}\t"
            f"{'t' if r['active'] else 'f'}\t{json.dumps(r['attributes'])}\n"
        )
    return "".join(lines).encode()


def ceiling(records: list[dict], owner_id: int) -> float:
    """Plain SQL on the same rows: what a hand-written loader would do."""
    data = copy_text(records, owner_id)  # pre-encoded, not timed
    cols = "customer_id, sku, name, price, currency, quantity, active, attributes"
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(
            "CREATE TEMP TABLE ceiling_stage (customer_id bigint, sku varchar(64), name varchar(200), "
            "price numeric(12,2), currency varchar(3), quantity integer, active boolean, attributes jsonb) "
            "ON COMMIT DROP"
        )
        cur.cursor.copy_expert(f"COPY ceiling_stage ({cols}) FROM STDIN", io.BytesIO(data))
        cur.execute("CREATE INDEX ON ceiling_stage (sku)")
        cur.execute("ANALYZE ceiling_stage")
        cur.execute(
            "DELETE FROM ceiling_stage s USING catalog_product t WHERE t.customer_id = s.customer_id "
            "AND t.sku = s.sku AND (t.name, t.price, t.currency, t.quantity, t.active, t.attributes) "
            "IS NOT DISTINCT FROM (s.name, s.price, s.currency, s.quantity, s.active, s.attributes)"
        )
        cur.execute(
            f"INSERT INTO catalog_product ({cols}) SELECT {cols} FROM ceiling_stage "
            "ON CONFLICT (customer_id, sku) DO UPDATE SET name = EXCLUDED.name, price = EXCLUDED.price, "
            "currency = EXCLUDED.currency, quantity = EXCLUDED.quantity, active = EXCLUDED.active, "
            "attributes = EXCLUDED.attributes, updated_at = now()"
        )
        # the snapshot's keys: everything copied, including the unchanged rows removed above
        cur.execute("CREATE TEMP TABLE ceiling_keys (sku varchar(64) PRIMARY KEY) ON COMMIT DROP")
        keys = "".join(r["sku"] + "\n" for r in records).encode()
        cur.cursor.copy_expert("COPY ceiling_keys (sku) FROM STDIN", io.BytesIO(keys))
        cur.execute(
            "DELETE FROM catalog_product t WHERE t.customer_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM ceiling_keys k WHERE k.sku = t.sku)",
            [owner_id],
        )
        cur.execute("COMMIT")
    return time.perf_counter() - t0


def contact(i: int) -> dict:
    return {
        "external_id": 10_000_000 + i,
        "email": f"contact{i}@example.com",
        "signed_up_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00+00:00",
        "birth_date": f"19{50 + i % 50}-01-15" if i % 3 else None,
        "score": f"{i % 10000 / 100:.2f}" if i % 4 else None,
        "category": f"CAT-{i % CATEGORIES:03d}",
    }


def contact_copy_text(records: list[dict], owner_id: int) -> bytes:
    def cell(v):
        return "\\N" if v is None else str(v)

    return "".join(
        f"{owner_id}\t{r['external_id']}\t{r['email']}\t{cell(r['birth_date'])}\t{r['signed_up_at']}\t"
        f"{cell(r['score'])}\t{r['category']}\n"
        for r in records
    ).encode()


def add_categories(owner) -> None:
    Category.objects.bulk_create(
        Category(customer=owner, code=f"CAT-{i:03d}", name=f"Category {i}") for i in range(CATEGORIES)
    )


def contact_ceiling(records: list[dict], owner_id: int) -> float:
    """Plain SQL on the same contacts, the category code resolved to its id by a join."""
    data = contact_copy_text(records, owner_id)  # pre-encoded, not timed
    cols = "customer_id, external_id, email, birth_date, signed_up_at, score"
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(
            "CREATE TEMP TABLE ceiling_contacts (customer_id bigint, external_id bigint, email varchar(254), "
            "birth_date date, signed_up_at timestamptz, score numeric(6,2), category varchar(32)) ON COMMIT DROP"
        )
        cur.cursor.copy_expert(f"COPY ceiling_contacts ({cols}, category) FROM STDIN", io.BytesIO(data))
        cur.execute("CREATE INDEX ON ceiling_contacts (external_id)")
        cur.execute("ANALYZE ceiling_contacts")
        cur.execute(
            "CREATE TEMP TABLE ceiling_resolved ON COMMIT DROP AS SELECT s.customer_id, s.external_id, "
            "s.email, s.birth_date, s.signed_up_at, s.score, c.id AS category_id FROM ceiling_contacts s "
            "LEFT JOIN crm_category c ON c.customer_id = s.customer_id AND c.code = s.category"
        )
        cur.execute(
            "DELETE FROM ceiling_resolved s USING crm_contact t WHERE t.customer_id = s.customer_id "
            "AND t.external_id = s.external_id AND (t.email, t.birth_date, t.signed_up_at, t.score, "
            "t.category_id) IS NOT DISTINCT FROM (s.email, s.birth_date, s.signed_up_at, s.score, s.category_id)"
        )
        cur.execute(
            f"INSERT INTO crm_contact ({cols}, category_id, notes) SELECT {cols}, category_id, '' "
            "FROM ceiling_resolved ON CONFLICT (customer_id, external_id) DO UPDATE SET email = EXCLUDED.email, "
            "birth_date = EXCLUDED.birth_date, signed_up_at = EXCLUDED.signed_up_at, score = EXCLUDED.score, "
            "category_id = EXCLUDED.category_id"
        )
        cur.execute(
            "DELETE FROM crm_contact t WHERE t.customer_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM ceiling_contacts k WHERE k.external_id = t.external_id)",
            [owner_id],
        )
        cur.execute("COMMIT")
    return time.perf_counter() - t0


class Cluster:
    def __init__(self, env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env or ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(4)

    def rss_mb(self) -> float:
        """Largest peak RSS (VmHWM) among the cluster's worker processes."""
        best = 0
        for pid in self._tree():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
            except OSError:
                pass
        return best / 1024

    def _tree(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        kids = [int(p) for p in out.stdout.split()]
        grand = []
        for k in kids:
            o = subprocess.run(["ps", "-o", "pid=", "--ppid", str(k)], capture_output=True, text=True)
            grand += [int(p) for p in o.stdout.split()]
        return [self.proc.pid] + kids + grand

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def engine(integration, records: list[dict], cluster: Cluster) -> tuple[float, SyncRun, float]:
    run, _ = services.run_create(integration=integration, mode="full")
    for seq, start in enumerate(range(0, len(records), BATCH), start=1):
        body = json.dumps({"seq": seq, "records": records[start : start + BATCH]}).encode()
        services.batch_receive(run=run, seq=seq, body=body, content_type="application/json")
    t0 = time.perf_counter()
    services.run_complete(run=run)
    peak = wait(run, cluster)
    return time.perf_counter() - t0, run, peak


def wait(run: SyncRun, cluster: Cluster) -> float:
    """Poll until the run reaches an end state (or needs review); the worker's peak RSS meanwhile."""
    peak = 0.0
    while True:
        run.refresh_from_db()
        peak = max(peak, cluster.rss_mb())
        if run.status in SyncRun.END_STATES or run.status == SyncRun.Status.NEEDS_REVIEW:
            break
        time.sleep(0.1)
    return max(peak, cluster.rss_mb())


PRODUCT_CASES = (("A", "first load"), ("B", "identical re-sync"), ("C", "10% changed, 5% new, 5% missing"))


def reset_rows(*owners) -> None:
    """The owners' products gone and the table vacuumed: each half of the journal comparison starts
    from the same table state (raw SQL: a queryset delete of 1,000,000 rows would itself take minutes)."""
    with connection.cursor() as cur:
        cur.execute("DELETE FROM catalog_product WHERE customer_id = ANY(%s)", [[o.pk for o in owners]])
        cur.execute("VACUUM ANALYZE catalog_product")


def table_state(owner) -> tuple[int, int]:
    """Row count and an order-independent checksum of the owner's synced product columns."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), coalesce(sum(hashtextextended((sku, name, price, currency, quantity, active, "
            "attributes)::text, 0)::numeric), 0) FROM catalog_product WHERE customer_id = %s",
            [owner.pk],
        )
        n, checksum = cur.fetchone()
    return n, int(checksum)


def journal_round(integration, owner, ceiling_owner, *, journal: bool) -> dict:
    """A, B and C through a cluster of their own, with the journal on or switched off in the worker
    (INTEGRATIONS_BENCH_NO_JOURNAL, read there by journal.enabled()): {case: (seconds, peak RSS MB)}.
    Each case's ceiling runs before it, not reported, so that the table holds the same rows before
    each engine run as in every other round (the ceiling's rows beside the bench's)."""
    reset_rows(owner, ceiling_owner)
    cluster = Cluster(ENV if journal else {**ENV, "INTEGRATIONS_BENCH_NO_JOURNAL": "1"})
    out = {}
    try:
        for case, label in PRODUCT_CASES:
            records = snapshot(case)
            ceiling(records, ceiling_owner.pk)
            elapsed, run, peak = engine(integration, records, cluster)
            assert run.status == "succeeded", (run.status, run.message)
            assert journal or not run.changes.exists(), "journal off, yet the run journaled"
            print(
                f"{case} {label}, journal {'on' if journal else 'off'}: engine {len(records) / elapsed:,.0f} rec/s "
                f"({elapsed:.1f} s), worker peak RSS {peak:.0f} MB",
                flush=True,
            )
            out[case] = (elapsed, peak)
            del records
    finally:
        cluster.stop()
    reset_rows(owner, ceiling_owner)
    return out


def journal_rounds(integration, owner, ceiling_owner) -> tuple[list, list]:
    """The journal's cost is a difference of two noisy times: rounds alternate off, on, off, ...
    (JOURNAL_ROUNDS rounds before the main cases, which are the last journal-on round), so that
    a slower machine late or early in the bench weighs on both sides. ([off rounds], [on rounds])."""
    off, on = [], []
    for i in range(JOURNAL_ROUNDS):
        journal = i % 2 == 1
        (on if journal else off).append(journal_round(integration, owner, ceiling_owner, journal=journal))
    return off, on


def undo(run: SyncRun, owner, before: tuple[int, int], cluster: Cluster) -> tuple:
    """Undo `run` as staff would (`undo_run RUN --yes`: the service queues it, the worker applies it),
    timed from the undo's creation to its end state; the table must be as it was before `run`."""
    t0 = time.perf_counter()
    u = services.run_undo(run=run, user="bench")
    peak = wait(u, cluster)
    elapsed = time.perf_counter() - t0
    assert u.status == "succeeded", (u.status, u.message)
    after = table_state(owner)
    assert after == before, f"undo left {after}, expected the state before C {before}"
    print(
        f"undo of C: {elapsed:.1f} s, worker peak RSS {peak:.0f} MB, counts {u.counts}; "
        f"table equals the state before C ({after[0]:,} rows, checksum)",
        flush=True,
    )
    return elapsed, peak, u.counts, after[0]


def main():
    import redis

    redis.Redis.from_url(REDIS).flushdb()  # no task of an earlier, interrupted bench
    slugs = ["bench", "bench-ceiling", "bench-neighbour"]
    Contact.objects.filter(customer__slug__in=slugs).delete()
    Category.objects.filter(customer__slug__in=slugs).delete()
    Product.objects.filter(customer__slug__in=slugs).delete()
    Customer.objects.filter(slug__in=slugs).delete()
    SyncRun.objects.all().delete()
    bench = services.customer_create(slug="bench", name="Bench")
    ceiling_owner = services.customer_create(slug="bench-ceiling", name="Ceiling")
    neighbour = services.customer_create(slug="bench-neighbour", name="Neighbour")
    integration = services.integration_create(customer=bench, slug="products", target="catalog.product")
    contacts = services.integration_create(customer=bench, slug="contacts", target="crm.contact")
    with connection.cursor() as cur:
        cur.cursor.copy_expert(
            "COPY catalog_product (customer_id, sku, name, price, currency, quantity, active, attributes) FROM STDIN",
            io.BytesIO(copy_text([record(i) for i in range(NEIGHBOUR_ROWS)], neighbour.pk)),
        )
    for owner in (bench, ceiling_owner, neighbour):
        add_categories(owner)
    with connection.cursor() as cur:
        cur.cursor.copy_expert(
            "COPY crm_contact (customer_id, external_id, email, birth_date, signed_up_at, score, category_id, notes) "
            "FROM STDIN",
            io.BytesIO(
                "".join(
                    f"{neighbour.pk}\t{10_000_000 + i}\tn{i}@example.com\t\\N\t2024-01-01T00:00:00+00:00\t\\N\t\\N\t\n"
                    for i in range(NEIGHBOUR_ROWS)
                ).encode()
            ),
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE catalog_product") if connection.get_autocommit() else None
    neighbour_before = (
        Product.objects.filter(customer=neighbour).count(),
        Contact.objects.filter(customer=neighbour).count(),
    )

    journal_off, journal_on = journal_rounds(integration, bench, ceiling_owner) if "product" in CASES else ([], [])
    cluster = Cluster()
    results = []
    main_on = {}
    undone = None
    try:
        if "product" in CASES:
            for case, label in PRODUCT_CASES:
                records = snapshot(case)
                ceil = ceiling(records, ceiling_owner.pk)
                before = table_state(bench) if case == "C" else None
                results.append(measure(f"{case} {label}", integration, records, ceil, cluster))
                main_on[case] = (results[-1][3], results[-1][4])
                del records
            undone = undo(SyncRun.objects.get(pk=results[-1][6]), bench, before, cluster)
        if "contact" in CASES:
            records = [contact(i) for i in range(CONTACTS)]
            for case, label in (("A", "first load"), ("B", "identical re-sync")):
                ceil = contact_ceiling(records, ceiling_owner.pk)
                results.append(measure(f"crm.contact {case} {label}", contacts, records, ceil, cluster))
            assert Contact.objects.filter(customer=bench, category__isnull=True).count() == 0
            del records
    finally:
        cluster.stop()
    assert (
        Product.objects.filter(customer=neighbour).count(),
        Contact.objects.filter(customer=neighbour).count(),
    ) == neighbour_before
    write_results(results, journal_off, journal_on + ([main_on] if main_on else []), undone)


def measure(label: str, integration, records: list[dict], ceil: float, cluster: Cluster) -> tuple:
    elapsed, run, peak = engine(integration, records, cluster)
    assert run.status == "succeeded", (run.status, run.message)
    print(
        f"{label}: engine {len(records) / elapsed:,.0f} rec/s ({elapsed:.1f} s), "
        f"ceiling {len(records) / ceil:,.0f} rec/s ({ceil:.1f} s), "
        f"{ceil / elapsed:.0%} of ceiling, worker peak RSS {peak:.0f} MB, counts {run.counts}",
        flush=True,
    )
    return (label, len(records), ceil, elapsed, peak, run.counts, run.pk)


def write_results(results, journal_off=None, journal_on=None, undone=None):
    lines = [
        "# make bench: results",
        "",
        f"Machine: {os.cpu_count()} cores; PostgreSQL (stock config) on 127.0.0.1; {N:,} records per snapshot; "
        f"{NEIGHBOUR_ROWS:,} rows of another customer beside them (crm.contact: {CONTACTS:,} contacts, each "
        f"referencing one of {CATEGORIES} categories). Engine: `complete` to end state with a real",
        "django-q2 cluster (2 workers, Redis broker). Ceiling: plain-SQL COPY into a temp table + set-based upsert and",
        "delete of the same rows, measured in the same run.",
        "",
        "| case | records | engine rec/s | ceiling rec/s | engine / ceiling | worker peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, n, ceil, elapsed, peak, *_ in results:
        lines.append(
            f"| {label} | {n:,} | {n / elapsed:,.0f} | {n / ceil:,.0f} | {ceil / elapsed:.0%} | {peak:.0f} MB |"
        )
    if journal_off and journal_on:
        targets = {"A": 0.25, "B": 0.05, "C": 0.25}  # issue 15
        lines += [
            "",
            f"Journal cost (catalog.product, SPEC 13): the same cases on the same data from the same table state, "
            f"in {len(journal_off) + len(journal_on)} rounds alternating",
            "a cluster started with INTEGRATIONS_BENCH_NO_JOURNAL=1 (off) and one with the journal (on; the last on "
            "round is the cases above); the median of each side, every round's time in order.",
            "",
            "| case | journal off (median) | journal on (median) | slowdown | target | rounds off | rounds on "
            "| worker peak RSS off / on |",
            "|---|---:|---:|---:|---:|---|---|---:|",
        ]
        for case, label in PRODUCT_CASES:
            offs = [r[case][0] for r in journal_off]
            ons = [r[case][0] for r in journal_on]
            off, on = statistics.median(offs), statistics.median(ons)
            rss_off, rss_on = max(r[case][1] for r in journal_off), max(r[case][1] for r in journal_on)
            lines.append(
                f"| {case} {label} | {off:.1f} s | {on:.1f} s | {on / off - 1:+.0%} | <= {targets[case]:.0%} | "
                f"{', '.join(f'{t:.1f}' for t in offs)} s | {', '.join(f'{t:.1f}' for t in ons)} s | "
                f"{rss_off:.0f} / {rss_on:.0f} MB |"
            )
    if undone:
        elapsed, peak, counts, rows = undone
        lines += [
            "",
            f"Undo of case C (service + worker, as `undo_run RUN --yes`): {elapsed:.1f} s from the undo's "
            f"creation to its end state; {counts.get('updated', 0):,} updated row(s) reverted, "
            f"{counts.get('deleted', 0):,} created row(s) deleted, {counts.get('created', 0):,} deleted row(s) "
            f"restored; the table equals its state before C ({rows:,} rows, checksum of the synced columns); "
            f"worker peak RSS {peak:.0f} MB.",
        ]
    lines.append("")
    lines.append(f"Generated by `make bench` on {time.strftime('%Y-%m-%d')}.")
    path = ROOT / "bench" / "RESULTS.md"
    # the sections after this one (## make bench-e2e, ...) are other benches' results: kept as they are
    old = path.read_text() if path.exists() else ""
    rest = old[old.index("\n## ") + 1 :] if "\n## " in old else ""
    path.write_text("\n".join(lines) + "\n" + ("\n" + rest if rest else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
