from django.core.management.base import CommandError

from ... import services
from ...models import SyncRun
from ...queue import inline
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Approve or reject a run held for review (needs_review)."

    def add_arguments(self, parser):
        parser.add_argument("run_id")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--approve", action="store_true")
        group.add_argument("--reject", action="store_true")

    def handle(self, *args, run_id, approve, reject, **options):
        run = SyncRun.objects.filter(pk=run_id).first() if _is_uuid(run_id) else None
        if run is None:
            raise CommandError(f"unknown run {run_id}")
        with inline():  # the approved run is applied here and now; a running worker may share it safely
            run = services.run_review(run=run, approve=approve, user="manage.py review_run")
        run.refresh_from_db()
        self.stdout.write(f"run {run.pk} {'approved' if approve else 'rejected'}: {run.status}")


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False
