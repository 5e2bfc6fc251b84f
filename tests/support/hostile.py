"""Helpers of the hostile-input tests (tests/api/test_hostile_*.py); their fixture `tables` is in
tests/api/conftest.py.

`tables`: both customers already have rows (acme through its integration `products`, globex
through its own integration of the same slug) and an open run each; `tables.assert_unchanged()`
checks that no row of either changed, whatever the hostile request did."""

from dataclasses import dataclass

from catalog.models import Product
from integrations.models import SyncBatch
from tests.support.api import error_of


def snapshot() -> dict:
    return {
        (p.customer_id, p.sku): (p.name, p.price, p.currency, p.quantity, p.active, p.attributes, p.updated_at)
        for p in Product.objects.all()
    }


@dataclass
class Tables:
    mine: str  # acme's open run
    theirs: str  # globex's open run
    before: dict

    def assert_unchanged(self):
        assert snapshot() == self.before

    def batches(self, run_id) -> int:
        return SyncBatch.objects.filter(run_id=run_id).count()


def refused(response, status: int, code: str | None = None) -> dict:
    """A clear 4xx: the status, the JSON error body, and its code when given."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    error = error_of(response)
    if code:
        assert error["code"] == code, error
    return error
