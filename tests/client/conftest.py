"""Fixtures of the client tests: the client package against pytest-django's live server.

`api` here is the client package's view (an Api: url, key, customer, integration, client); it
overrides, in this directory only, the batch API's `api` of tests/conftest.py."""

import pytest
from integrations_client import Client

from integrations import services
from tests.support.client import FAST_RETRY, TIMEOUT, Api, FaultProxy


@pytest.fixture
def api(live_server):
    customer = services.customer_create(slug="client-co", name="Client Co", emails=["ops@client.example"])
    integration = services.integration_create(customer=customer, slug="products", target="catalog.product")
    _, key = services.api_key_create(customer=customer)
    client = Client(live_server.url, key, retry=FAST_RETRY, timeout=TIMEOUT)
    yield Api(live_server.url, key, customer, integration, client)
    client.close()


@pytest.fixture
def proxy(live_server):
    proxy = FaultProxy(live_server.url)
    yield proxy
    proxy.close()
