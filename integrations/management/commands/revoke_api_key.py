from ... import services
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Revoke an API key by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        key = services.api_key_revoke(prefix=prefix.split(".", 1)[0])
        self.stdout.write(f"revoked API key {key.prefix} of {key.customer.slug}")
