"""The runs changelist makes the same number of queries for a page of 10 runs and of 100."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import services
from integrations.models import RecordError, SyncRun, WebhookDelivery

pytestmark = pytest.mark.django_db

STATES = [
    SyncRun.Status.SUCCEEDED,
    SyncRun.Status.FAILED,
    SyncRun.Status.PROCESSING,
    SyncRun.Status.NEEDS_REVIEW,
    SyncRun.Status.PARTIAL,
    SyncRun.Status.QUEUED,
    SyncRun.Status.CANCELLED,
]


def make_runs(n):
    integrations = []
    for c in range(3):
        customer = services.customer_create(slug=f"c{c}-{n}", name=f"Customer {c}")
        integrations.append(services.integration_create(customer=customer, slug="products", target="catalog.product"))
    now = timezone.now()
    runs = [
        SyncRun(
            integration=integrations[i % 3],
            mode="full",
            status=STATES[i % len(STATES)],
            completed_at=now,
            started_at=now - timedelta(seconds=i),
            finished_at=now,
            received=i,
            created=i,
            failed=i % 2,
            batches_total=3,
            batches_done=i % 4,
        )  # 0 to 3 of 3
        for i in range(n)
    ]
    SyncRun.objects.bulk_create(runs)
    RecordError.objects.bulk_create(
        RecordError(run=r, seq=1, index=k, key=f"K{k}", code="invalid", message="bad price", record={"sku": f"K{k}"})
        for r in runs
        if r.failed
        for k in range(2)
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            run=r,
            event="run.succeeded",
            webhook_id=f"msg_{r.pk}",
            event_timestamp=now,
            url="https://example.com/hook",
            payload={},
        )
        for r in runs
    )


def changelist_queries(client, url="/admin/integrations/syncrun/"):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response


@pytest.mark.parametrize(
    "url",
    [
        "/admin/integrations/syncrun/",
        "/admin/integrations/syncrun/?status__exact=failed",
        "/admin/integrations/recorderror/",
        "/admin/integrations/integration/",
        "/admin/integrations/webhookdelivery/",
    ],
)
def test_changelists_make_constant_queries_for_10_and_100_runs(admin_client, url):
    make_runs(10)
    few, response = changelist_queries(admin_client, url)
    make_runs(90)
    many, response = changelist_queries(admin_client, url)
    assert few == many, (few, many)
    if url == "/admin/integrations/syncrun/":
        assert response.context["cl"].result_count == 100
        assert len(response.context["cl"].result_list) == 100  # one page of 100
        assert many < 20
