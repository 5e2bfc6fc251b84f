"""Fixtures of the admin tests (the data they build is tests/support/scenarios.py)."""

import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(fast_password_hashing):
    """Every admin test logs users in."""
