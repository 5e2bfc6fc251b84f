"""Peak memory of the Python client while it syncs 1,000,000 generated records.

    .venv/bin/python bench/client_memory.py [--records 1000000] [--format protobuf|json]

Starts the real server (`manage.py runserver`) on a scratch SQLite database and a free loopback
port, with no worker: the run is only received and completed (queued), so what is measured is the
client streaming every batch to the real batch API. The client runs in its own process, and its
peak resident set size (getrusage ru_maxrss) is reported against the 200 MB target.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 200

CLIENT = r"""
import json, resource, sys, time
from integrations_client import Client

url, key, n, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def records():
    for i in range(n):
        yield {"sku": f"SKU-{i:08d}", "name": f"Product number {i}", "price": f"{i % 10000}.99",
               "currency": "EUR", "quantity": i % 500, "active": i % 7 != 0,
               "attributes": {"color": ("red", "green", "blue")[i % 3], "size": i % 40}}

client = Client(url, key, format=fmt, timeout=(10, 600))
baseline = rss_mb()
batches = []
started = time.perf_counter()
report = client.sync("products", records(), wait=False, progress=lambda answer, sent: batches.append(rss_mb()))
elapsed = time.perf_counter() - started
print(json.dumps({"status": report.status, "received": report.counts.get("received"), "batches": len(batches),
                  "seconds": round(elapsed, 1), "baseline_mb": round(baseline, 1), "peak_mb": round(rss_mb(), 1),
                  "peak_after_each_batch_mb": [round(b, 1) for b in batches]}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["protobuf", "json"], default="protobuf")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="client-bench-") as scratch:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{scratch}/bench.sqlite3",
            "MEDIA_ROOT": f"{scratch}/media",
            "INTEGRATIONS_RUN_TASKS_INLINE": "false",
            "INTEGRATIONS_THROTTLE_RATE": "100000/min",
        }
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "create_customer", "bench", "--name", "Bench")
        manage(env, "create_integration", "bench", "products", "--target", "catalog.product")
        key = manage(env, "create_api_key", "bench").strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{url}/api/v1/schema/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            client_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            result = subprocess.run(
                [sys.executable, "-c", CLIENT, url, key, str(args.records), args.format],
                cwd=scratch,
                env=client_env,
                capture_output=True,
                text=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return 1
    data = json.loads(result.stdout.strip().splitlines()[-1])
    rate = data["received"] / data["seconds"] if data["seconds"] else 0
    print(
        f"client {args.format}: {data['received']:,} records in {data['batches']} batches, {data['seconds']} s "
        f"({rate:,.0f} records/s), run {data['status']}"
    )
    print(f"client peak RSS {data['peak_mb']} MB (after imports {data['baseline_mb']} MB); target < {TARGET_MB} MB")
    print("peak RSS after each batch (MB):", " ".join(str(v) for v in data["peak_after_each_batch_mb"]))
    return 0 if data["peak_mb"] < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
