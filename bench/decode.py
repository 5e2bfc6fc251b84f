"""The CPU cost of one 50,000-product batch per wire format, without a database (issue 14 point 1):
the client's encoding (gzip included), the server's receipt (inflate, envelope check) and the
worker's decode and validation into the target's schema structs. Medians of BENCH_REPEAT runs,
records per second. Protobuf in rows is the layout the client sent before issue 14 (still read).

    .venv/bin/python bench/decode.py
"""

import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
import django  # noqa: E402

django.setup()
from integrations_client.encoding import BatchEncoder  # noqa: E402

from integrations.formats import MediaType  # noqa: E402
from integrations.ingest import decode, transport  # noqa: E402
from integrations.ingest.validate import Validator  # noqa: E402
from integrations.proto.testing import encode_batch as encode_rows  # noqa: E402
from integrations.targets import get_target  # noqa: E402

N = int(os.environ.get("BENCH_RECORDS", 50_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 7))
LIMIT = 64 * 1024 * 1024


def record(i: int) -> dict:
    return {
        "sku": f"SKU-{i:08d}",
        "name": f"Product {i} rev 0",
        "price": f"{(i % 100000) / 100:.2f}",
        "currency": "EUR",
        "quantity": i % 1000,
        "active": i % 11 != 0,
        "attributes": {"color": "red", "size": i % 7},
    }


def client_encode(records, fmt):
    encoder = BatchEncoder(fmt)
    for r in records:
        encoder.add(r)
    return encoder.finish(1).body


def median_seconds(fn) -> float:
    times = []
    for _ in range(REPEAT):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    import gzip

    target = get_target("catalog.product")
    records = [record(i) for i in range(N)]
    bodies = {
        "json": (client_encode(records, "json"), MediaType.JSON),
        "protobuf, columns": (client_encode(records, "protobuf"), MediaType.PROTOBUF),
        "protobuf, rows (before)": (gzip.compress(encode_rows(records, seq=1), mtime=0), MediaType.PROTOBUF),
    }

    def worker(body, ctype):
        result = Validator(target).validate(decode.decode_batch(transport.decompress(body, "gzip", LIMIT), ctype))
        assert len(result.valid) == N, result.problems[:3]

    print(f"{N:,} products a batch, medians of {REPEAT}; records per second")
    print("| format | bytes (gzip) | client encode | receipt | worker decode + validate |")
    print("|---|---:|---:|---:|---:|")
    for name, (body, ctype) in bodies.items():
        fmt = "json" if ctype == MediaType.JSON else "protobuf"
        encode = f"{N / median_seconds(lambda f=fmt: client_encode(records, f)):,.0f}" if "rows" not in name else ""
        receipt = median_seconds(
            lambda b=body, c=ctype: transport.summarize_batch(transport.decompress(b, "gzip", LIMIT), c)
        )
        work = median_seconds(lambda b=body, c=ctype: worker(b, c))
        print(f"| {name} | {len(body):,} | {encode} | {N / receipt:,.0f} | {N / work:,.0f} |")


if __name__ == "__main__":
    main()
