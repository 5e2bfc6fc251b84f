"""Seed the crm demo targets (make run, after seed_demo): integrations of the demo customer into
crm.category, crm.contact and crm.order_line, each synced once with generated records."""

import datetime
import json
import random

from django.core.management.base import BaseCommand

from integrations import services
from integrations.models import Customer, Integration
from integrations.queue import inline

CATEGORIES = {"VIP": "Very important", "NEW": "New customer", "B2B": "Business"}


def demo_records(contacts: int = 50, orders: int = 20, seed: int = 1):
    rng = random.Random(seed)
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    categories = [{"code": code, "name": name} for code, name in CATEGORIES.items()]
    people = [
        {
            "external_id": 1000 + i,
            "email": f"contact{i}@demo.example",
            "signed_up_at": (start + datetime.timedelta(days=i, minutes=rng.randrange(1440))).isoformat(),
            "birth_date": f"19{rng.randrange(50, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}" if i % 3 else None,
            "score": f"{rng.randrange(0, 10000) / 100:.2f}" if i % 4 else None,
            "category": rng.choice(list(CATEGORIES)) if i % 5 else None,
        }
        for i in range(contacts)
    ]
    lines = [
        {
            "order_no": f"SO-{5000 + o}",
            "line": n,
            "sku": f"SKU-{rng.randrange(1, 200):04d}",
            "quantity": rng.randrange(1, 10),
            "unit_price": f"{rng.randrange(100, 50000) / 100:.2f}",
        }
        for o in range(orders)
        for n in range(1, rng.randrange(2, 5))
    ]
    return categories, people, lines


class Command(BaseCommand):
    help = "Seed the crm demo targets for the demo customer and sync generated records once (again: nothing)."

    def handle(self, *args, **options):
        customer = Customer.objects.filter(slug="demo").first() or services.customer_create(
            slug="demo", name="Demo Retail Ltd", emails=["tech@demo.example"]
        )
        categories, people, lines = demo_records()
        for slug, target, records in (
            ("categories", "crm.category", categories),
            ("contacts", "crm.contact", people),
            ("order-lines", "crm.order_line", lines),
        ):
            integration = Integration.objects.filter(
                customer=customer, slug=slug
            ).first() or services.integration_create(customer=customer, slug=slug, target=target, max_error_rate=0.05)
            earlier = integration.runs.order_by("created_at").first()
            if earlier is not None:  # seeded once (make run runs this every time): the data stays as it is
                self.stdout.write(
                    f"  {customer.slug} / {slug:<12} : seeded earlier (run {earlier.pk}, {earlier.status})"
                )
                continue
            with inline():
                run, _ = services.run_create(integration=integration, mode="full")
                services.batch_receive(
                    run=run,
                    seq=1,
                    body=json.dumps({"seq": 1, "records": records}).encode(),
                    content_type="application/json",
                )
                services.run_complete(run=run)
            run.refresh_from_db()
            self.stdout.write(f"  {customer.slug} / {slug:<12} : run {run.pk} {run.status} ({run.message})")
