"""Transient faults injected by a loopback proxy between the client and the live server: a
connection dropped after the server took the request, a 503, a 429 with Retry-After. The client
retries the same request (same seq, same bytes; the same Idempotency-Key) and nothing is doubled."""

import time

import pytest
from integrations_client import RetryPolicy, ServerError, TransportError

from catalog.models import Product
from integrations.models import SyncBatch, SyncRun
from tests.support.client import products


def batch_log(proxy):
    return [(outcome, status) for method, path, outcome, status in proxy.log if path.endswith("/batches/")]


def test_dropped_connection_and_503_on_batches_are_retried_without_duplicates(api, proxy):
    proxy.fault("POST", "/batches/", 2, "drop")  # seq 2 reaches the server, its answer is lost
    proxy.fault("POST", "/batches/", 4, 503)  # seq 3 is refused once
    client = api.new_client(proxy.url)
    report = client.sync("products", products(3000), batch_size=1000)

    assert report.status == "succeeded", report.summary()
    assert report.counts["received"] == 3000 and report.counts["created"] == 3000
    # seq 1 ok; seq 2 taken but dropped, then re-posted: "same seq, same bytes" answers 200; seq 3: 503, then 202
    assert batch_log(proxy) == [("ok", 202), ("drop", 202), ("ok", 200), (503, None), ("ok", 202)]
    run = SyncRun.objects.get(pk=report.run_id)
    assert list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("seq", "received")) == [
        (1, 1000),
        (2, 1000),
        (3, 1000),
    ]
    assert Product.objects.filter(customer=api.customer).count() == 3000


def test_a_dropped_run_creation_does_not_open_two_runs(api, proxy):
    proxy.fault("POST", "/runs/", 1, "drop")  # the server opens the run; the client never hears of it
    proxy.fault("POST", "/complete/", 1, "drop")  # completed (and, inline, applied) unheard
    report = api.new_client(proxy.url).sync("products", products(10))
    assert report.status == "succeeded" and report.counts["created"] == 10
    creates = [(o, s) for m, p, o, s in proxy.log if p.endswith("/products/runs/")]
    assert creates == [("drop", 201), ("ok", 200)]  # the retry got the same run back
    assert SyncRun.objects.filter(integration=api.integration).count() == 1


def test_429_honours_retry_after(api, proxy):
    proxy.fault("POST", "/batches/", 1, 429, headers={"Retry-After": "1"})
    client = api.new_client(proxy.url, retry=RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02))
    started = time.monotonic()
    report = client.sync("products", products(5))
    assert time.monotonic() - started >= 1.0
    assert report.status == "succeeded"
    assert batch_log(proxy) == [(429, None), ("ok", 202)]


def test_retries_give_up_with_a_clear_error_and_cancel_the_run(api, proxy):
    for n in range(1, 4):
        proxy.fault("POST", "/batches/", n, 503)
    client = api.new_client(proxy.url, retry=RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02))
    with pytest.raises(ServerError) as caught:
        client.sync("products", products(5))
    assert caught.value.status == 503 and caught.value.message == "injected 503"
    assert SyncRun.objects.get(integration=api.integration).status == "cancelled"


def test_an_unreachable_server_raises_transport_error(api, proxy):
    url = proxy.url
    proxy.close()
    client = api.new_client(url, retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02))
    with pytest.raises(TransportError, match="2 attempt"):
        client.list_integrations()
