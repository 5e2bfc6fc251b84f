"""Fixtures shared by every test directory. Tasks run inline after commit (INTEGRATIONS_RUN_TASKS_INLINE)
unless a test starts a real worker; engine tests use `transactional_db` so every commit is a real commit.

Layout: tests/unit (modules called directly), engine (runs through the services and tasks), api (the
HTTP API, hostile input included), admin (the staff pages), client (the client package against a live
server), ops (commands, processes, deployment, observability), faults (kill -9, PostgreSQL only),
browser (Playwright). Helpers that are not fixtures live in tests/support; fixtures used by one
directory only live in its conftest.py."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from integrations import services
from tests.support.api import client_for
from tests.support.processes import database_url


@pytest.fixture(autouse=True)
def _isolated_storage(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # a cache of its own per test: throttle counts (per key, per client address) never carry over,
    # and a shared Redis is never touched
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"tests-{uuid.uuid4().hex}"}
    }


@pytest.fixture
def fast_password_hashing(settings):
    """The test users' passwords hashed in microseconds, not a second (autouse in admin/ and browser/)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def customer(transactional_db):
    return services.customer_create(slug="acme", name="Acme", emails=["ops@acme.example"])


@pytest.fixture
def other_customer(transactional_db):
    return services.customer_create(slug="globex", name="Globex")


@pytest.fixture
def integration(customer):
    return services.integration_create(customer=customer, slug="products", target="catalog.product")


# The batch API's clients (tests/client/conftest.py has an `api` of its own: the client package).
@pytest.fixture
def api_key(customer):
    _, raw = services.api_key_create(customer=customer, name="tests")
    return raw


@pytest.fixture
def api(api_key):
    """A client with the key of the customer `acme` (which has the integration `products`)."""
    return client_for(api_key)


@pytest.fixture
def other_api(other_customer):
    """A client of another customer, `globex`, which has an integration of the same slug."""
    services.integration_create(customer=other_customer, slug="products", target="catalog.product")
    _, raw = services.api_key_create(customer=other_customer, name="other")
    return client_for(raw)


@pytest.fixture
def manage(transactional_db, tmp_path):
    """`manage(*args, check=status)`: manage.py as a user runs it, a subprocess on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE": "true",
        "EMAIL_URL": "dummymail://",
    }
    env.pop("REDIS_URL", None)

    def run(*args, check=None):
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=Path(django_settings.BASE_DIR),
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if check is not None:
            assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    return run
