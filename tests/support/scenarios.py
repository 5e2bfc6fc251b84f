"""Data for the admin and browser tests: users, and runs in every state that the staff pages show.
Their conftest.py files hash the users' passwords fast (fast_password_hashing).

Built through the services (tasks inline), so the pages show what the engine really produced."""

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog.models import Product
from integrations import services
from integrations.admin import ensure_reviewer_group
from integrations.models import Customer, Integration, SyncRun, WebhookAttempt, WebhookDelivery
from tests.support import product, sync

PASSWORD = "correct-horse-battery"


def make_superuser(username="boss"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


def make_reviewer(username="reviewer"):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.groups.add(ensure_reviewer_group())
    return user


@dataclass
class Scenario:
    customer: Customer
    other: Customer
    products: Integration  # acme/products: 20 rows, then a held full run of 3
    feed: Integration  # globex/feed: a failed run
    succeeded: SyncRun
    held: SyncRun
    failed: SyncRun
    receiving: SyncRun
    stuck: SyncRun
    delivery: WebhookDelivery
    extra: dict = field(default_factory=dict)


def held_integration(customer, slug="products", rows=20, keep=3):
    integration = services.integration_create(customer=customer, slug=slug, target="catalog.product")
    first = sync(integration, [product(f"SKU-{i:03d}") for i in range(rows)])
    held = sync(integration, [product(f"SKU-{i:03d}", price="12.50") for i in range(keep)])
    assert first.status == SyncRun.Status.SUCCEEDED and held.status == SyncRun.Status.NEEDS_REVIEW, held.message
    return integration, first, held


def failed_run(integration):
    bad = {"sku": "BAD-1", "name": '=HYPERLINK("http://evil.example")', "price": "-3", "currency": "EUR"}
    run = sync(integration, [product("OK-1"), bad, {"name": "no key", "price": 1, "currency": "EUR"}])
    assert run.status == SyncRun.Status.FAILED, run.message
    return run


def build(customer=None, other=None) -> Scenario:
    customer = customer or services.customer_create(slug="acme", name="Acme", emails=["ops@acme.example"])
    other = other or services.customer_create(slug="globex", name="Globex")
    products, succeeded, held = held_integration(customer)
    feed = services.integration_create(
        customer=other,
        slug="feed",
        target="catalog.product",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="whsec_" + "A" * 32,
    )
    failed = failed_run(feed)
    receiving, _ = services.run_create(integration=feed, mode="incremental")
    late = services.integration_create(customer=other, slug="late", target="catalog.product")
    long_ago = timezone.now() - timedelta(hours=3)
    stuck = SyncRun.objects.create(
        integration=late,
        mode="full",
        status=SyncRun.Status.PROCESSING,
        completed_at=long_ago,
        started_at=long_ago,
        heartbeat_at=long_ago,
        batches_total=4,
        batches_done=1,
        received=200,
    )
    delivery = WebhookDelivery.objects.create(
        run=failed,
        event="run.failed",
        webhook_id="msg_test_1",
        event_timestamp=failed.finished_at,
        url=feed.webhook_url,
        payload={"type": "run.failed", "data": {"id": str(failed.pk)}},
        status=WebhookDelivery.Status.PENDING,
        attempts=1,
        last_status_code=503,
        last_error="503 Service Unavailable",
        next_attempt_at=timezone.now() + timedelta(minutes=1),
    )
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        duration_ms=42,
        status_code=503,
        error="503 Service Unavailable",
    )
    return Scenario(customer, other, products, feed, succeeded, held, failed, receiving, stuck, delivery)


def spread_over_days(integration, days=14, per_day=3):
    """Runs over the last `days` days in mixed states, for the index chart."""
    statuses = [
        SyncRun.Status.SUCCEEDED,
        SyncRun.Status.SUCCEEDED,
        SyncRun.Status.PARTIAL,
        SyncRun.Status.FAILED,
        SyncRun.Status.CANCELLED,
        SyncRun.Status.SUCCEEDED,
    ]
    now = timezone.now()
    made = []
    for d in range(days):
        for k in range(per_day + (d % 3)):
            status = statuses[(d + k) % len(statuses)]
            at = now - timedelta(days=d, minutes=5 * k)
            made.append(
                SyncRun(
                    integration=integration,
                    mode="full",
                    status=status,
                    completed_at=at,
                    started_at=at,
                    finished_at=at + timedelta(seconds=3 + k),
                    received=100 + k,
                    created=2,
                    updated=3,
                    unchanged=95 + k,
                    failed=0 if status != "failed" else 7,
                    message=f"{status} run",
                )
            )
    SyncRun.objects.bulk_create(made)
    for run in made:
        SyncRun.objects.filter(pk=run.pk).update(created_at=run.completed_at)
    return made


def product_count(customer) -> int:
    return Product.objects.filter(customer=customer).count()


def products_file(tmp_path, n=5, name="products.json", prefix="UP"):
    path = tmp_path / name
    path.write_text(json.dumps([product(f"{prefix}-{i}") for i in range(n)]))
    return path
