from ... import services
from ...models import ApiKey
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Revoke an API key by its prefix. A key revoked already is left as it is, said so, and the "
        "exit status is 0: the key ends revoked either way, so a script may run again safely."
    )

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="the key's prefix (the part before the dot), or the whole key")

    def handle(self, *args, prefix, **options):
        prefix = prefix.split(".", 1)[0]
        # revoking is idempotent: a script re-run after a failure must not stop at the keys it already
        # revoked; the wording tells a person that nothing changed (an unknown prefix still fails)
        already = ApiKey.objects.filter(prefix=prefix, revoked=True).exists()
        key = services.api_key_revoke(prefix=prefix)
        if already:
            self.stdout.write(f"API key {key.prefix} of {key.customer.slug} was already revoked; nothing changed")
        else:
            self.stdout.write(f"revoked API key {key.prefix} of {key.customer.slug}")
