from ... import services
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Create a customer: create_customer SLUG --name NAME [--email E ...]"

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--email", action="append", default=[], help="a technical contact (repeatable)")

    def handle(self, *args, slug, name, email, **options):
        customer = services.customer_create(slug=slug, name=name, emails=email)
        self.stdout.write(f"created customer {customer.slug}")
