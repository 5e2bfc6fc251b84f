import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ... import services
from ...models import Customer, Integration, SyncRun
from ...queue import inline


class Command(BaseCommand):
    help = "Seed the demo (make run): customer, integration, API key, staff user, and sync the sample file."

    def add_arguments(self, parser):
        parser.add_argument("--sample", default=str(Path(settings.BASE_DIR) / "samples" / "products.json"))

    def handle(self, *args, sample, **options):
        customer = Customer.objects.filter(slug="demo").first() or services.customer_create(
            slug="demo", name="Demo Retail Ltd", emails=["tech@demo.example"])
        integration = Integration.objects.filter(customer=customer, slug="products").first() or \
            services.integration_create(customer=customer, slug="products", target="catalog.product",
                                        max_error_rate=0.05)
        key, raw = services.api_key_create(customer=customer, name="make run")
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        with open(sample, "rb") as stream, inline():
            run = services.upload_create(integration=integration, stream=stream, filename=sample,
                                         source=SyncRun.Source.COMMAND)
        run.refresh_from_db()
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  customer / integration : {customer.slug} / {integration.slug}")
        self.stdout.write(f"  sample sync            : run {run.pk} {run.status} ({run.message})")
        self.stdout.write(f"  admin login            : admin / {password}   (http://127.0.0.1:8000/admin/)")
        self.stdout.write(f"  API key                : {raw}")
