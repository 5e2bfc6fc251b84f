from ...retention import purge_sync_data
from ._base import ServiceCommand

# (key of the report, what was done, what a dry run would do)
LINES = (
    ("payloads_expired", "raw batch payloads expired", "raw batch payloads to expire"),
    ("uploads_expired", "uploaded files expired", "uploaded files to expire"),
    ("files_deleted", "files deleted from storage", "files to delete from storage"),
    ("runs_deleted", "runs deleted", "runs to delete"),
    ("batches_deleted", "batches deleted", "batches to delete"),
    ("errors_deleted", "record errors deleted", "record errors to delete"),
    (
        "journals_expired",
        "runs whose change journal expired (no longer undoable)",
        "runs whose change journal would expire (no longer undoable)",
    ),
    ("changes_deleted", "journaled changes deleted", "journaled changes to delete"),
    ("staging_rows_deleted", "staged records of ended runs deleted", "staged records of ended runs to delete"),
    ("deliveries_deleted", "webhook deliveries deleted", "webhook deliveries to delete"),
    ("attempts_deleted", "webhook attempts deleted", "webhook attempts to delete"),
    ("notifications_deleted", "notification marks deleted", "notification marks to delete"),
)


class Command(ServiceCommand):
    help = (
        "Delete raw payloads older than INTEGRATIONS_RAW_RETENTION_DAYS and finished runs (with their "
        "errors, batches, staged rows and deliveries) older than INTEGRATIONS_RUN_RETENTION_DAYS, and change "
        "journals older than INTEGRATIONS_CHANGES_RETENTION_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args, dry_run, **options):
        report = purge_sync_data(dry_run=dry_run)
        if dry_run:
            self.stdout.write("Dry run: nothing was deleted.")
        self.stdout.write(f"Raw payloads older than {report['raw_before']}, runs older than {report['runs_before']}:")
        for key, done, would in LINES:
            self.stdout.write(f"  {would if dry_run else done}: {report[key]}")
