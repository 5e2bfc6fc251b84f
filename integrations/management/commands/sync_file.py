import contextlib
import time

from django.core.management.base import CommandError

from ... import services
from ...exceptions import MalformedBatch
from ...formats import Format
from ...ingest.files import guess_format
from ...models import Mode, SyncRun
from ...queue import inline
from ...reporting import run_report_text
from ._base import ServiceCommand

EXIT = {"succeeded": 0, "failed": 1, "cancelled": 1, "partial": 3, "needs_review": 4}


class Command(ServiceCommand):
    help = "Sync a JSON, NDJSON or CSV file into an integration: sync_file CUSTOMER/INTEGRATION PATH"

    def add_arguments(self, parser):
        parser.add_argument("integration", help="CUSTOMER/INTEGRATION")
        parser.add_argument("path")
        parser.add_argument("--format", choices=Format.values)
        parser.add_argument("--mode", choices=Mode.values)
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="process the run here and wait for its end; exit 0 succeeded, 1 failed or "
            "cancelled, 3 partial, 4 needs_review",
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits at most")

    def handle(self, *args, integration, path, format, mode, dry_run, wait, timeout, **options):
        if "/" not in integration:
            raise CommandError(f"name the integration as CUSTOMER/INTEGRATION, not {integration!r}")
        customer_slug, slug = integration.split("/", 1)
        target = services.integration_get(customer_slug, slug)
        try:
            fmt = guess_format(path, format)
        except MalformedBatch:
            raise CommandError(
                f"cannot tell the format of {path}: name it .json, .ndjson or .csv, or pass --format json|ndjson|csv"
            ) from None
        try:
            stream = open(path, "rb")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        # --wait: do the work in this process (a running worker may share it safely)
        with stream, inline() if wait else contextlib.nullcontext():
            run = services.upload_create(
                integration=target,
                stream=stream,
                filename=path,
                fmt=fmt,
                mode=mode,
                dry_run=dry_run,
                source=SyncRun.Source.COMMAND,
            )
        self.stdout.write(str(run.pk))
        if not wait:
            return
        deadline = time.monotonic() + timeout
        run.refresh_from_db()
        while run.status not in EXIT:
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} is still {run.status} after {timeout:g} seconds")
            time.sleep(0.5)
            run.refresh_from_db()
            if run.status == SyncRun.Status.QUEUED and not run.dry_run:
                with inline():  # its turn may have come (rule 6)
                    services.integration_kick(integration_id=run.integration_id)
                run.refresh_from_db()
        self.stdout.write(
            run_report_text(
                run,
                review_hint=f"`manage.py review_run {run.pk} --approve` (or --reject), or the admin's review page",
                errors_hint=f"every error as CSV to fix and send again as it is: the admin's run page, or "
                f"GET /api/v1/runs/{run.pk}/errors/?format=csv with the customer's API key",
            )
        )
        if EXIT[run.status]:
            raise SystemExit(EXIT[run.status])
