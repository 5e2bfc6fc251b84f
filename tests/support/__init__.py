"""Helpers of the tests (plain functions and classes; the fixtures are in the conftest.py files).

- tests.support: a product record, a whole sync through the services, which database runs;
- tests.support.api: requests to the batch API (bodies, posting, the JSON error shape);
- tests.support.hostile: the snapshot of the tables that a hostile request must leave unchanged;
- tests.support.scenarios: users and runs in every state the staff pages show (admin, browser);
- tests.support.client: the client package against the live server, and a fault-injecting proxy;
- tests.support.processes: what tests that start real processes (qcluster, manage.py) share;
- tests.support.admin: every URL of the app's model admins, the POST of a change form;
- tests.support.receivers: a webhook receiver that drips its answer."""

import json

from django.conf import settings

from integrations import services


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
