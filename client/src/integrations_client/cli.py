"""`integrations-sync`: sync a file from a shell, and follow what became of it.

    integrations-sync --url https://integrations.example.com products data.ndjson   # key: $INTEGRATIONS_API_KEY
    integrations-sync status RUN_ID [--wait]        # the run as it is now (or once it settles)
    integrations-sync errors RUN_ID [--code C]      # its record errors, with every field's reasons
    integrations-sync errors RUN_ID --csv > e.csv   # the errors file: fix the cells, send it back as it is

JSON arrays and NDJSON are read here, streaming, and posted as batches (each retried on its own).
A line of an NDJSON file that is not JSON does not stop the file: it is sent so that the server
records it as a `parse_error` of the run, as it does for such a line in an upload. CSV files go to
the upload endpoint instead: a CSV cell is text, and only the server knows the target's schema and
the integration's field map that say which column is a number, a boolean or a JSON object
(`--upload` sends JSON and NDJSON that way too). An integration named `errors`, `status` or `sync`
is synced with the explicit form `integrations-sync sync SLUG FILE`.

Progress bars (records sent, then batches validated by the server) go to standard error when it
is a terminal, or with --progress; --quiet prints only the final report.

Exit status of a sync (and of `status --wait`): 0 succeeded, 1 failed or cancelled (or the sync
could not be done), 3 partial, 4 needs_review (as the server's `sync_file --wait`), 2 usage errors
(bad arguments, unreadable file). `status` without --wait and `errors` exit 0 once they answered.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

from . import __version__
from .client import MAX_BATCH_RECORDS, Client
from .encoding import Unparseable
from .errors import ApiError, IntegrationsClientError, WaitTimeout
from .files import FileFormatError, guess_format, iter_records
from .progress import ProgressBars
from .report import Report, format_error

PROG = "integrations-sync"
USAGE_ERROR = 2
COMMANDS = ("sync", "status", "errors")
# options that take a value, to find the first positional argument (the command) in argv
_VALUED = {
    "--url",
    "--key",
    "--mode",
    "--format",
    "--batch-size",
    "--transport",
    "--wait-timeout",
    "--timeout",
    "--code",
    "--output",
    "-o",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=os.environ.get("INTEGRATIONS_URL"), help="the service's root URL (default: $INTEGRATIONS_URL)"
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("INTEGRATIONS_API_KEY"),
        help="the API key (default: $INTEGRATIONS_API_KEY, which keeps it out of shell history)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="per HTTP request")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the final report")
    parser.add_argument(
        "--progress", action="store_true", help="show progress bars even when standard error is not a terminal"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long to wait for the end of the run (default 3600)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The sync command's parser (`integrations-sync [sync] INTEGRATION FILE`)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sync a file of records (JSON array, NDJSON or CSV) into an integration. "
        f"Also: `{PROG} status RUN_ID` and `{PROG} errors RUN_ID` (see their --help).",
        epilog="Exit status: 0 succeeded, 1 failed or cancelled, 3 partial, 4 needs_review, 2 usage error.",
    )
    _common(parser)
    parser.add_argument("integration", help="the integration's slug, e.g. products")
    parser.add_argument("file", help="the file to send")
    parser.add_argument("--mode", choices=["full", "incremental"], default="full", help="default: full")
    parser.add_argument("--format", choices=["json", "ndjson", "csv"], help="default: from the file's extension")
    parser.add_argument("--dry-run", action="store_true", help="validate and count, apply nothing")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH_RECORDS,
        metavar="N",
        help=f"records per batch, 1 to {MAX_BATCH_RECORDS} (default {MAX_BATCH_RECORDS})",
    )
    parser.add_argument("--upload", action="store_true", help="send the whole file to the upload endpoint")
    parser.add_argument(
        "--transport",
        choices=["protobuf", "json"],
        default="protobuf",
        help="how batches travel (default protobuf, gzip-compressed)",
    )
    parser.add_argument("--no-wait", action="store_true", help="print the run id and exit once it is queued")
    _waiting(parser)
    return parser


def build_status_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} status",
        description="Show a run: its status, counts, progress and message.",
        epilog="Exit status 0 once shown (1 if the server refused); with --wait, that of a sync: "
        "0 succeeded, 1 failed or cancelled, 3 partial, 4 needs_review.",
    )
    _common(parser)
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--wait", action="store_true", help="wait until the run ends (or is held for review)")
    _waiting(parser)
    return parser


def build_errors_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} errors",
        description="A run's record errors with every field's reasons, or (--csv) the errors file: the "
        "records' fields then error_code, error_message, error_fields, error_seq, error_index; "
        "fix the cells and send the file again as it is (the error_* columns are ignored).",
        epilog="Exit status 0 once written (1 if the server refused).",
    )
    _common(parser)
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--csv", action="store_true", help="the CSV file instead of readable lines")
    parser.add_argument(
        "--code", help="only errors of this code (parse_error, missing_key, invalid, unknown_field, duplicate_key)"
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    return parser


def split_command(argv: list[str]) -> tuple[str, list[str]]:
    """(command, its arguments): the first positional argument names it when it is one of COMMANDS;
    otherwise the arguments are a sync's (`integrations-sync SLUG FILE`, the original form)."""
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            break
        if arg.startswith("-"):
            skip = arg in _VALUED
            continue
        if arg in COMMANDS:
            return arg, argv[:i] + argv[i + 1 :]
        break
    return "sync", argv


def main(argv: list[str] | None = None) -> int:
    command, argv = split_command(list(sys.argv[1:] if argv is None else argv))
    parser = {"sync": build_parser, "status": build_status_parser, "errors": build_errors_parser}[command]()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url is required (or set INTEGRATIONS_URL)")
    if not args.key:
        parser.error("--key is required (or set INTEGRATIONS_API_KEY)")
    run = {"sync": run_sync, "status": run_status, "errors": run_errors}[command]
    client = Client(args.url, args.key, timeout=(10.0, args.timeout), format=getattr(args, "transport", "protobuf"))
    try:
        return run(args, parser, client)
    except WaitTimeout as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"{PROG}: the server refused: {exc.message} ({exc.status} {exc.code})", file=sys.stderr)
        return 1
    except IntegrationsClientError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _bars(args) -> ProgressBars:
    return ProgressBars(enabled=not args.quiet and (args.progress or sys.stderr.isatty()))


def run_sync(args, parser: argparse.ArgumentParser, client: Client) -> int:
    if not 1 <= args.batch_size <= MAX_BATCH_RECORDS:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_RECORDS}")
    try:
        fmt = guess_format(args.file, args.format)
    except FileFormatError as exc:
        parser.error(str(exc))
    upload = fmt == "csv" or args.upload
    try:
        stream = open(args.file, "rb") if upload else open(args.file, encoding="utf-8-sig")
    except OSError as exc:
        print(f"{PROG}: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE_ERROR

    bars = _bars(args)
    # without bars (not a terminal), one line per batch and per change of the run, as a log
    lines = not args.quiet and not bars.enabled

    def say(text: str) -> None:
        if not args.quiet:
            print(text, flush=True)

    last_progress: list[Any] = [None]

    def on_poll(run: dict[str, Any]) -> None:
        bars.polled(run)
        progress = run.get("progress") or {}
        seen = (run.get("status"), progress.get("batches_done"), progress.get("batches_total"))
        if lines and seen != last_progress[0]:
            last_progress[0] = seen
            print(f"run {run['id']}: {seen[0]}, batches {seen[1] or 0}/{seen[2] or 0} validated", flush=True)

    def on_batch(answer: dict[str, Any], sent: int) -> None:
        bars.sent(answer, sent)
        if lines:
            print(f"batch {answer.get('seq')}: {answer.get('received')} records accepted ({sent} sent)", flush=True)

    unreadable = UnreadableLines()
    try:
        with stream:
            if upload:
                say(f"uploading {args.file} ({fmt})")
                report = client.upload_file(
                    args.integration, stream, format=fmt, mode=args.mode, dry_run=args.dry_run, wait=False
                )
                say(f"run {report.run_id}: uploaded, {report.status}")
                if not args.no_wait:
                    report = client.wait(report.run_id, timeout=args.wait_timeout, on_poll=on_poll)
            else:
                report = client.sync(
                    args.integration,
                    unreadable.watch(iter_records(stream, fmt)),
                    mode=args.mode,
                    batch_size=args.batch_size,
                    dry_run=args.dry_run,
                    wait=not args.no_wait,
                    poll_timeout=args.wait_timeout,
                    progress=on_batch,
                    on_poll=on_poll,
                )
    except FileFormatError as exc:
        bars.close()
        print(
            f"{PROG}: {args.file}: {exc}. Nothing was applied: the run was cancelled. "
            f"A JSON array cannot be read past such an error; fix the file, or send it as NDJSON "
            f"(one record per line), where a bad line becomes one parse_error record.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        bars.close()
        print(f"{PROG}: interrupted; the run was cancelled", file=sys.stderr)
        return 130
    finally:
        bars.close()
    unreadable.print()
    if args.no_wait:
        print(report.run_id)
        return 0
    print_report(report)
    return report.exit_status


class UnreadableLines:
    """Counts the lines of a file that were not JSON (sent as parse_error records), for the report."""

    def __init__(self, keep: int = 5):
        self.count = 0
        self.first: list[str] = []
        self.keep = keep

    def watch(self, records: Iterator[Any]) -> Iterator[Any]:
        for record in records:
            if isinstance(record, Unparseable):
                self.count += 1
                if len(self.first) < self.keep:
                    self.first.append(record.reason)
            yield record

    def print(self) -> None:
        if not self.count:
            return
        print(
            f"{self.count} line(s) of the file could not be read; each was sent as a parse_error record "
            f"of the run (the rest of the file was synced):"
        )
        for reason in self.first:
            print(f"  {reason}")


def run_status(args, parser: argparse.ArgumentParser, client: Client) -> int:
    if not args.wait:
        report = Report(client.get_run(args.run_id), client.iter_errors)
        print_report(report, max_errors=0 if not report.settled else 10)
        if not report.settled:
            progress = report.run.get("progress") or {}
            print(
                f"progress: batches {progress.get('batches_done') or 0}/{progress.get('batches_total') or 0} validated"
            )
        return 0
    bars = _bars(args)
    try:
        report = client.wait(args.run_id, timeout=args.wait_timeout, on_poll=bars.polled)
    finally:
        bars.close()
    print_report(report)
    return report.exit_status


def run_errors(args, parser: argparse.ArgumentParser, client: Client) -> int:
    out = (
        open(args.output, "wb")
        if args.output and args.csv
        else (open(args.output, "w", encoding="utf-8") if args.output else None)
    )
    try:
        if args.csv:
            target = out or sys.stdout.buffer
            client.errors_csv(args.run_id, target, code=args.code)
            target.flush()
            return 0
        write = (lambda text: out.write(text + "\n")) if out else print
        count = 0
        for error in client.iter_errors(args.run_id, code=args.code):
            count += 1
            for line in format_error(error):
                write(line)
        if not count and not args.quiet:
            print(
                f"run {args.run_id} has no record errors{f' of code {args.code}' if args.code else ''}", file=sys.stderr
            )
        return 0
    finally:
        if out:
            out.close()


def next_step(report: Report) -> str | None:
    """What the reader of a report can do next, as the exact command."""
    run_id = report.run_id
    if report.status == "needs_review":
        return (
            f"held for staff review: nothing is applied until a staff member approves (the run is then "
            f"applied) or rejects it (nothing changes). `{PROG} status {run_id} --wait` waits for "
            f"the decision."
        )
    if report.counts.get("failed") and report.status in ("partial", "failed"):
        return (
            f"every error: `{PROG} errors {run_id}`; the errors file to fix and send again as it is: "
            f"`{PROG} errors {run_id} --csv -o errors.csv`, then `{PROG} {report.run.get('integration') or 'SLUG'} "
            f"errors.csv`."
        )
    return None


def print_report(report: Report, *, max_errors: int = 10) -> None:
    print(report.summary())
    failed = report.counts.get("failed") or 0
    if failed and max_errors:
        print("first errors:")
        for n, error in enumerate(report.errors()):
            if n >= max_errors:
                print(f"  ... and {failed - max_errors} more")
                break
            for line in format_error(error):
                print(f"  {line}")
    hint = next_step(report)
    if hint:
        print(f"next: {hint}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
