"""Fixtures of the API tests (the clients `api`, `api_key`, `other_api` are in tests/conftest.py)."""

import pytest

from catalog.models import Product
from tests.support.api import open_run, records
from tests.support.hostile import Tables, snapshot


@pytest.fixture
def tables(api, other_api, integration, customer, other_customer):
    """Both customers have rows and an open run each; `tables.assert_unchanged()` after a hostile request."""
    for owner, recs in ((customer, records(3)), (other_customer, records(2, start=100))):
        Product.objects.bulk_create(Product(customer=owner, **r) for r in recs)
    mine, theirs = open_run(api)["id"], open_run(other_api)["id"]
    return Tables(mine=mine, theirs=theirs, before=snapshot())
