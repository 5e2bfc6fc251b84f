"""`manage.py check --deploy` reports no warnings with the production settings (docs/SECURITY.md),
and the check is not vacuous: the development defaults do warn."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "project.settings_production",
    "ALLOWED_HOSTS": "integrations.example.com",
    # not contacted by `check`; production settings only insist on PostgreSQL and a shared cache
    "DATABASE_URL": "postgres://integrations@db.invalid:5432/integrations",
    "REDIS_URL": "redis://redis.invalid:6379/0",
}
# the same with project.settings alone, every security setting from the environment
PLAIN_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "integrations.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    # a clean environment: nothing of the test run (DEBUG, DATABASE_URL, ...) leaks in
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("env", [PRODUCTION, PLAIN_SETTINGS], ids=["settings_production", "settings+env"])
def test_check_deploy_is_clean(env):
    result = check_deploy(env | {"SECRET_KEY": secrets.token_urlsafe(64)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_development_defaults_do_warn():
    result = check_deploy({"DJANGO_SETTINGS_MODULE": "project.settings", "DEBUG": "true"})
    assert result.returncode != 0
    for check_id in (
        "security.W004",
        "security.W008",
        "security.W009",
        "security.W012",
        "security.W016",
        "security.W018",
    ):
        assert check_id in result.stderr + result.stdout, check_id


def test_production_settings_refuse_a_weak_secret_key():
    for weak in ("django-insecure-development-key-change-me-in-production-0123456789", "short"):
        result = check_deploy(PRODUCTION | {"SECRET_KEY": weak})
        assert result.returncode != 0 and "SECRET_KEY" in result.stderr
