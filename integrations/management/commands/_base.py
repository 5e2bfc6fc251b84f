"""What every command shares: turn the service layer's errors into one line and an exit status."""

from django.core.management.base import BaseCommand, CommandError

from ...exceptions import IntegrationsError


class ServiceCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except IntegrationsError as exc:
            raise CommandError(exc.message) from None
        except LookupError as exc:
            raise CommandError(str(exc).strip("'\"")) from None
