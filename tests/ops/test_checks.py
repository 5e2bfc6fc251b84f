"""System checks of a host's set-up (SPEC section 12, issue 12 point 2): every missing app and a
missing or inconsistent Q_CLUSTER are named with their fix, before anything crashes."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parents[2]


def _manage(tmp_path, without: set[str], *args) -> subprocess.CompletedProcess:
    """manage.py <args> with the demo's settings minus some INSTALLED_APPS, in a fresh process."""
    (tmp_path / "host_settings.py").write_text(
        textwrap.dedent(f"""
        from project.settings import *  # noqa: F403
        INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in {sorted(without)!r}]
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "INTEGRATIONS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="host_settings",
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        DATABASE_URL=f"sqlite:///{tmp_path / 'host.sqlite3'}",
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_each_missing_app_is_named_with_the_fix_and_migrate_stops_before_a_crash(tmp_path):
    missing = {"rest_framework", "django_q", "drf_spectacular", "drf_spectacular_sidecar"}
    check = _manage(tmp_path, missing, "check")
    assert check.returncode == 1, check.stdout + check.stderr
    for app in missing:
        assert f'integrations.E003) "{app}" is not in INSTALLED_APPS' in check.stderr, check.stderr
    assert 'HINT: Add "django_q" to INSTALLED_APPS' in check.stderr
    assert "Traceback" not in check.stderr
    # migrate runs the checks first: it stops with them, not in the post_migrate hook importing django_q
    migrate = _manage(tmp_path, {"django_q"}, "migrate", "--noinput")
    assert migrate.returncode == 1
    assert 'integrations.E003) "django_q" is not in INSTALLED_APPS' in migrate.stderr, migrate.stderr
    assert "Traceback" not in migrate.stderr
    assert not (tmp_path / "host.sqlite3").exists() or "Applying" not in migrate.stdout


def test_without_rest_framework_api_key_startup_names_it_and_the_fix(tmp_path):
    result = _manage(tmp_path, {"rest_framework_api_key", "drf_spectacular_sidecar"}, "check")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: The integrations app needs"), last
    assert '"rest_framework_api_key"' in last and '"drf_spectacular_sidecar"' in last
    assert 'INSTALLED_APPS += ["rest_framework", "rest_framework_api_key", "django_q"' in last


def _q_messages():
    return {message.id: message for message in checks.run_checks() if message.id.startswith("integrations.")}


def test_demo_settings_pass_every_check():
    assert _q_messages() == {}


@pytest.mark.parametrize(
    "q_cluster, expected",
    [
        (None, "integrations.E001"),
        ({"name": "host"}, "integrations.E001"),
        ({"name": "host", "orm": "nosuchdb", "timeout": 60, "retry": 90}, "integrations.E004"),
        ({"name": "host", "orm": "default", "timeout": 300, "retry": 300}, "integrations.E002"),
        ({"name": "host", "orm": "default"}, "integrations.W001"),
    ],
    ids=["missing", "no-broker", "unknown-database", "retry-not-above-timeout", "no-timeout"],
)
def test_q_cluster_problems_are_named_with_the_fix(settings, q_cluster, expected):
    if q_cluster is None:
        del settings.Q_CLUSTER
    else:
        settings.Q_CLUSTER = q_cluster
    messages = _q_messages()
    assert set(messages) == {expected}
    assert messages[expected].hint
    if expected != "integrations.W001":
        assert messages[expected].is_serious()


def test_a_retrying_broker_with_retry_above_timeout_or_redis_is_fine(settings):
    settings.Q_CLUSTER = {"name": "host", "orm": "default", "timeout": 600, "retry": 700}
    assert _q_messages() == {}
    settings.Q_CLUSTER = {"name": "host", "redis": "redis://127.0.0.1:6379/0"}
    assert _q_messages() == {}


@pytest.mark.parametrize("chosen, expected", [(None, "IMMEDIATE"), ("DEFERRED", "DEFERRED")])
def test_sqlite_transactions_begin_immediate_unless_the_host_chose(tmp_path, django_db_blocker, chosen, expected):
    """A host's SQLite without transaction_mode: the app's read-then-write transactions (two workers
    starting runs) would fail at once with "database is locked"; IMMEDIATE makes them wait their turn."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    options = {"transaction_mode": chosen} if chosen else {}
    wrapper = DatabaseWrapper(
        {
            "NAME": str(tmp_path / "h.sqlite3"),
            "OPTIONS": options,
            "ENGINE": "django.db.backends.sqlite3",
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
            "TEST": {},
        },
        alias="host",
    )
    try:
        with django_db_blocker.unblock():  # a database of its own, not the test database
            wrapper.ensure_connection()
        assert wrapper.transaction_mode == expected
    finally:
        wrapper.close()
