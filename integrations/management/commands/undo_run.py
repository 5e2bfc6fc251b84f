from django.core.management.base import CommandError

from ... import selectors, services
from ...queue import inline
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Undo the latest applied run of an integration (SPEC 13). Without --yes: print what the undo would "
        "do and exit with status 1; with --yes: undo it (a run of its own, applied in its turn)."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", help="the run's id, or a unique start of it (as the admin lists it)")
        parser.add_argument("--yes", action="store_true", help="undo it (otherwise: the preview only)")

    def handle(self, *args, run_id, yes, **options):
        run = selectors.run_by_id_or_prefix(run_id)
        why = services.undo_refusal(run)
        if why:
            raise CommandError(f"run {run.pk} cannot be undone: {why}")
        p = services.undo_preview(run)
        self.stdout.write(
            f"undo of run {run.pk} ({run.integration}) would restore {p['created']} deleted row(s), "
            f"revert {p['updated']} updated row(s) and delete {p['deleted']} created row(s); "
            f"{p['conflicts']} row(s) changed since would be left as they are."
        )
        if not yes:
            raise CommandError("nothing done: run again with --yes to undo it")
        with inline():  # applied here and now if its turn has come; a running worker may share it safely
            undo = services.run_undo(run=run, user="manage.py undo_run")
        undo.refresh_from_db()
        self.stdout.write(f"undo run {undo.pk}: {undo.status}. {undo.message}")
