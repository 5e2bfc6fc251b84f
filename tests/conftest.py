"""Shared fixtures. Tasks run inline after commit (INTEGRATIONS_RUN_TASKS_INLINE) unless a test
starts a real worker; engine tests use `transactional_db` so every commit is a real commit."""

import json
import uuid

import pytest
from django.conf import settings

from integrations import services


@pytest.fixture(autouse=True)
def _isolated_storage(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # a cache of its own per test: throttle counts (per key, per client address) never carry over,
    # and a shared Redis is never touched
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"tests-{uuid.uuid4().hex}"}}


@pytest.fixture
def customer(transactional_db):
    return services.customer_create(slug="acme", name="Acme", emails=["ops@acme.example"])


@pytest.fixture
def other_customer(transactional_db):
    return services.customer_create(slug="globex", name="Globex")


@pytest.fixture
def integration(customer):
    return services.integration_create(customer=customer, slug="products", target="catalog.product")


def product(sku, **extra):
    record = {"sku": sku, "name": f"Product {sku}", "price": "9.99", "currency": "EUR"}
    record.update(extra)
    return record


def sync(integration, *batches, mode=None, dry_run=False, deletes=None):
    """Create a run, post each batch (a list of records, or a dict body), complete it; return the run."""
    run, _ = services.run_create(integration=integration, mode=mode, dry_run=dry_run)
    for seq, batch in enumerate(batches, start=1):
        body = batch if isinstance(batch, dict) else {"records": batch}
        body = {"seq": seq, **body}
        services.batch_receive(run=run, seq=seq, body=json.dumps(body).encode(), content_type="application/json")
    services.run_complete(run=run)
    run.refresh_from_db()
    return run


def db_is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
