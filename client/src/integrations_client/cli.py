"""`integrations-sync`: sync a file from a shell.

    integrations-sync --url https://integrations.example.com --key "$KEY" products data.json

JSON arrays and NDJSON are read here, streaming, and posted as batches (progress per batch, each
batch retried on its own). CSV files go to the upload endpoint instead: a CSV cell is text, and
only the server knows the target's schema and the integration's field map that say which column
is a number, a boolean or a JSON object (`--upload` sends JSON and NDJSON that way too).

Exit status: 0 succeeded, 1 failed or cancelled (or the sync could not be done), 3 partial,
4 needs_review (as the server's `sync_file --wait`), 2 usage errors (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import __version__
from .client import MAX_BATCH_RECORDS, Client
from .errors import ApiError, IntegrationsClientError, WaitTimeout
from .files import FileFormatError, guess_format, iter_records
from .report import Report

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="integrations-sync",
        description="Sync a file of records (JSON array, NDJSON or CSV) into an integration.",
        epilog="Exit status: 0 succeeded, 1 failed or cancelled, 3 partial, 4 needs_review, 2 usage error.",
    )
    parser.add_argument("--url", default=os.environ.get("INTEGRATIONS_URL"),
                        help="the service's root URL (default: $INTEGRATIONS_URL)")
    parser.add_argument("--key", default=os.environ.get("INTEGRATIONS_API_KEY"),
                        help="the API key (default: $INTEGRATIONS_API_KEY, which keeps it out of shell history)")
    parser.add_argument("integration", help="the integration's slug, e.g. products")
    parser.add_argument("file", help="the file to send")
    parser.add_argument("--mode", choices=["full", "incremental"], default="full", help="default: full")
    parser.add_argument("--format", choices=["json", "ndjson", "csv"], help="default: from the file's extension")
    parser.add_argument("--dry-run", action="store_true", help="validate and count, apply nothing")
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH_RECORDS, metavar="N",
                        help=f"records per batch, 1 to {MAX_BATCH_RECORDS} (default {MAX_BATCH_RECORDS})")
    parser.add_argument("--upload", action="store_true", help="send the whole file to the upload endpoint")
    parser.add_argument("--transport", choices=["protobuf", "json"], default="protobuf",
                        help="how batches travel (default protobuf, gzip-compressed)")
    parser.add_argument("--no-wait", action="store_true", help="print the run id and exit once it is queued")
    parser.add_argument("--wait-timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="how long to wait for the end of the run (default 3600)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="per HTTP request")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the final report")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url is required (or set INTEGRATIONS_URL)")
    if not args.key:
        parser.error("--key is required (or set INTEGRATIONS_API_KEY)")
    if not 1 <= args.batch_size <= MAX_BATCH_RECORDS:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_RECORDS}")
    try:
        fmt = guess_format(args.file, args.format)
    except FileFormatError as exc:
        parser.error(str(exc))
    try:
        stream = open(args.file, "rb") if (fmt == "csv" or args.upload) else open(args.file, encoding="utf-8-sig")
    except OSError as exc:
        print(f"integrations-sync: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE_ERROR

    def say(text: str) -> None:
        if not args.quiet:
            print(text, flush=True)

    last_progress: list[Any] = [None]

    def on_poll(run: dict[str, Any]) -> None:
        progress = run.get("progress") or {}
        seen = (run.get("status"), progress.get("batches_done"), progress.get("batches_total"))
        if seen != last_progress[0]:
            last_progress[0] = seen
            say(f"run {run['id']}: {seen[0]}, batches {seen[1] or 0}/{seen[2] or 0} validated")

    def on_batch(answer: dict[str, Any], sent: int) -> None:
        say(f"batch {answer.get('seq')}: {answer.get('received')} records accepted ({sent} sent)")

    client = Client(args.url, args.key, timeout=(10.0, args.timeout), format=args.transport)
    try:
        with stream:
            if fmt == "csv" or args.upload:
                say(f"uploading {args.file} ({fmt})")
                report = client.upload_file(args.integration, stream, format=fmt, mode=args.mode,
                                            dry_run=args.dry_run, wait=False)
                say(f"run {report.run_id}: uploaded, {report.status}")
                if not args.no_wait:
                    report = client.wait(report.run_id, timeout=args.wait_timeout, on_poll=on_poll)
            else:
                report = client.sync(args.integration, iter_records(stream, fmt), mode=args.mode,
                                     batch_size=args.batch_size, dry_run=args.dry_run, wait=not args.no_wait,
                                     poll_timeout=args.wait_timeout, progress=on_batch, on_poll=on_poll)
    except FileFormatError as exc:
        print(f"integrations-sync: {args.file}: {exc} (the run was cancelled)", file=sys.stderr)
        return 1
    except WaitTimeout as exc:
        print(f"integrations-sync: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"integrations-sync: the server refused: {exc.message} ({exc.status} {exc.code})", file=sys.stderr)
        return 1
    except IntegrationsClientError as exc:
        print(f"integrations-sync: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("integrations-sync: interrupted; the run was cancelled", file=sys.stderr)
        return 130
    finally:
        client.close()
    if args.no_wait:
        print(report.run_id)
        return 0
    print_report(report)
    return report.exit_status


def print_report(report: Report, *, max_errors: int = 10) -> None:
    print(report.summary())
    if report.counts.get("failed"):
        print("first errors:")
        for n, error in enumerate(report.errors()):
            if n >= max_errors:
                print(f"  ... see GET {report.run.get('errors_url') or 'runs/<id>/errors/'}")
                break
            where = f"batch {error.get('seq')} #{error.get('index')}"
            print(f"  {where} key={error.get('key')!r} {error.get('code')}: {error.get('message')}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
