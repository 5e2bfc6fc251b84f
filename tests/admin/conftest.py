"""Fixtures of the admin tests (the data they build is tests/support/scenarios.py)."""

import pytest

from tests.support import scenarios


@pytest.fixture(autouse=True)
def _fast_passwords(fast_password_hashing):
    """Every admin test logs users in."""


@pytest.fixture
def world(transactional_db):
    """The admin's sample data (tests/support/scenarios.py)."""
    return scenarios.build()


@pytest.fixture
def boss(client, transactional_db):
    """The test client logged in as a superuser."""
    client.force_login(scenarios.make_superuser())
    return client


@pytest.fixture
def reviewer(client, transactional_db):
    """The test client logged in as a member of the reviewers' group."""
    client.force_login(scenarios.make_reviewer())
    return client
