from ... import services
from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Create an API key for a customer; prints the whole key (shown once) as the last line."

    def add_arguments(self, parser):
        parser.add_argument("customer")
        parser.add_argument("--name", default="default")

    def handle(self, *args, customer, name, **options):
        key, raw = services.api_key_create(customer=services.customer_get(customer), name=name)
        self.stdout.write(f"created API key {key.prefix} for {customer}; store it now, it is not shown again:")
        self.stdout.write(raw)
