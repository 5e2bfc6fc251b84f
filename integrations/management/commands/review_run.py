from ... import selectors, services
from ...queue import inline
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Approve or reject a run held for review (needs_review); RUN_ID may be its first characters."

    def add_arguments(self, parser):
        parser.add_argument("run_id", help="the run's id, or a unique start of it (as the admin lists it)")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--approve", action="store_true")
        group.add_argument("--reject", action="store_true")

    def handle(self, *args, run_id, approve, reject, **options):
        run = selectors.run_by_id_or_prefix(run_id)
        with inline():  # the approved run is applied here and now; a running worker may share it safely
            run = services.run_review(run=run, approve=approve, user="manage.py review_run")
        run.refresh_from_db()
        self.stdout.write(f"run {run.pk} {'approved' if approve else 'rejected'}: {run.status}")
