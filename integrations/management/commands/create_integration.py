from ... import services
from ...models import Mode
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Create an integration of a customer into a target."

    def add_arguments(self, parser):
        parser.add_argument("customer")
        parser.add_argument("slug")
        parser.add_argument("--target", required=True, help="e.g. catalog.product")
        parser.add_argument("--mode", choices=Mode.values, default=Mode.FULL)
        parser.add_argument("--max-error-rate", type=float, default=0.0)
        parser.add_argument("--max-deletes-percent", type=float, default=20.0)
        parser.add_argument("--webhook-url", default="")
        parser.add_argument("--webhook-secret", default="")
        parser.add_argument("--field-map", default="{}", help='JSON, e.g. {"Title": "name"}')
        parser.add_argument("--adapter", default="")
        parser.add_argument("--email", action="append", default=[], help="a contact (repeatable)")

    def handle(self, *args, **o):
        customer = services.customer_get(o["customer"])
        integration = services.integration_create(
            customer=customer,
            slug=o["slug"],
            target=o["target"],
            mode=o["mode"],
            max_error_rate=o["max_error_rate"],
            max_deletes_percent=o["max_deletes_percent"],
            webhook_url=o["webhook_url"],
            webhook_secret=o["webhook_secret"],
            field_map=o["field_map"],
            adapter=o["adapter"],
            contacts=o["email"],
        )
        self.stdout.write(f"created integration {integration}")
