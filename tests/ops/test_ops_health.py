"""SPEC section 14: /healthz answers while the process does; /readyz names each dependency that is
down (a database, the migrations, the cache, file storage) with a 503; neither is authenticated,
throttled or logged at INFO. `manage.py worker_alive` fails when no cluster has been seen."""

import copy
import logging
import socket

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from integrations import health
from tests.support import db_is_postgres


@pytest.fixture(autouse=True)
def _recheck_migrations(monkeypatch):
    monkeypatch.setattr(health, "_migrations_done", False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


@pytest.fixture
def database_down():
    """A second database alias whose server is not there: a closed port (PostgreSQL) or a file
    in a directory that does not exist (SQLite)."""
    config = copy.deepcopy(connections.settings["default"])
    if db_is_postgres():
        config.update(HOST="127.0.0.1", PORT=str(closed_port()))
    else:
        config["NAME"] = "/nonexistent-directory/down.sqlite3"
    connections.settings["down"] = config
    yield "down"
    connections["down"].close()
    del connections.settings["down"]
    delattr(connections._connections, "down") if hasattr(connections._connections, "down") else None


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")  # no db fixture: any query would raise
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ready_when_every_dependency_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}


def test_readyz_fails_when_a_database_is_down(client, db, database_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert list(body["failed"]) == ["database:down"]


def test_readyz_fails_when_storage_is_unwritable(client, db, settings, tmp_path):
    # root ignores permissions: a volume that is not mounted (its parent is a file) is what fails
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the volume should be mounted")
    settings.MEDIA_ROOT = str(blocker / "media")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["storage"]


def test_readyz_fails_when_the_cache_is_down(client, db, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["cache"]


def test_readyz_fails_until_migrations_are_applied(client, db):
    last = MigrationRecorder.Migration.objects.filter(app="integrations").order_by("-id").first()
    last.delete()  # rolled back with the test's transaction
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == {"migrations": "1 not applied"}


def test_readyz_names_every_failed_check_at_once(client, db, settings, tmp_path, database_down):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings.MEDIA_ROOT = str(blocker / "media")
    assert set(client.get("/readyz").json()["failed"]) == {"database:down", "storage"}


def test_probes_are_never_throttled(client, db, settings):
    settings.INTEGRATIONS_THROTTLE_RATE = "2/min"
    statuses = {client.get(path).status_code for path in ["/healthz", "/readyz"] * 40}
    assert statuses == {200}


def test_probes_log_nothing_at_info_and_a_failure_once_as_a_warning(client, db, settings, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/healthz")
    client.get("/readyz")
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings.MEDIA_ROOT = str(blocker / "media")
    client.get("/readyz")
    logged = [(r.name, r.levelname) for r in caplog.records if r.levelno >= logging.INFO]
    assert logged == [("integrations", "WARNING")]  # never Django's ERROR line per failing poll


def test_probes_need_no_credentials_and_no_https_redirect(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # as settings_production has it
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/admin/").status_code == 301


# --- the worker's liveness ------------------------------------------------------------------


def announce_cluster(status="Idle", host=None):
    """What a running django-q2 cluster's sentinel saves every guard cycle (a Stat, 3 s long)."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage
    from django_q.status import Stat, Status

    stat = Status(pid=4242, cluster_id="test-cluster")
    stat.status = status
    stat.host = host or socket.gethostname()
    get_broker().set_stat(Stat.get_key(stat.cluster_id), SignedPackage.dumps(stat, True), 3)


def forget_clusters():
    from django.core.cache import caches
    from django_q.conf import Conf

    cache = caches[Conf.CACHE]
    for key in cache.get(Conf.Q_STAT, []) or []:
        cache.delete(key)


@pytest.fixture
def clean_stats(db):
    from django.core.cache import caches

    forget_clusters()
    caches["default"].delete_many([f"integrations:cluster-seen:{socket.gethostname()}", "integrations:cluster-seen:*"])
    yield
    forget_clusters()


def test_worker_alive_fails_when_no_cluster_runs(clean_stats):
    with pytest.raises(CommandError, match="no django-q2 cluster seen running"):
        call_command("worker_alive", "--max-age", "30")


def test_worker_alive_passes_while_a_cluster_reports_and_for_max_age_after(clean_stats, capsys):
    announce_cluster("Working")
    call_command("worker_alive", "--max-age", "30")
    assert "test-cluster" in capsys.readouterr().out
    forget_clusters()  # the cluster stopped reporting: its Stat expired
    alive, why = health.cluster_alive(max_age=30)
    assert alive and "last seen" in why
    import time

    alive, why = health.cluster_alive(max_age=30, now=time.time() + 31)
    assert not alive


def test_worker_alive_ignores_clusters_of_other_hosts_and_stopped_ones(clean_stats):
    announce_cluster("Idle", host="another-machine")
    with pytest.raises(CommandError):
        call_command("worker_alive", "--max-age", "5")
    call_command("worker_alive", "--max-age", "5", "--any-host")
    forget_clusters()
    announce_cluster("Stopped")
    assert health.cluster_alive(max_age=5)[0] is False
