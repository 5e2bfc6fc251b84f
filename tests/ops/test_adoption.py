"""Proof of adoption (issue 12 point 10, SPEC section 12): the distribution built from this repository,
installed in a fresh virtualenv, added to a fresh `django-admin startproject` with exactly the set-up
SPEC section 12 names, works there: checks, migrate, runserver and qcluster (DEBUG on, the startproject
default), the commands, a sync through the HTTP API, the admin pages and a run e-mail, the API docs.

On SQLite always; on PostgreSQL too when DATABASE_URL names one (the host gets a database of its own)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# --- the host's own app: a model and its target (a string key) ----------------------------------
SHOP_MODELS = """
from django.db import models


class Item(models.Model):
    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE)
    code = models.CharField(max_length=32)
    title = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    in_stock = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "code"], name="uniq_item")]
"""
SHOP_TARGETS = """
import decimal

import msgspec

from integrations.targets import Target, register

from .models import Item


class ItemRecord(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    title: str
    price: decimal.Decimal
    in_stock: bool = True


@register
class ItemTarget(Target):
    name = "shop.item"
    model = Item
    owner_field = "customer"
    key_field = "code"
    schema = ItemRecord
"""
# --- SPEC section 12, word for word, appended to startproject's files ------------------------------
SPEC_SETTINGS = """
INSTALLED_APPS += ["rest_framework", "rest_framework_api_key", "django_q",
                   "drf_spectacular", "drf_spectacular_sidecar", "integrations"]
Q_CLUSTER = {"name": "myproject", "orm": "default"}           # any django-q2 broker
"""
SPEC_URLS = """
from django.urls import include  # startproject imports only `path`
urlpatterns += [path("api/v1/", include("integrations.api.urls"))]   # any prefix
"""
END_STATES = {"succeeded", "partial", "failed", "cancelled", "needs_review"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd, cwd, env, timeout=180) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def host_database():
    """None (SQLite, startproject's default) or a PostgreSQL database of the host's own."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield None
        return
    import psycopg2

    parts = urlparse(url)
    server = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
    }
    name = f"adoption_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dbname="postgres", **server)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": server["user"],
            "PASSWORD": server["password"],
            "HOST": server["host"],
            "PORT": server["port"],
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_fresh_startproject_host_adopts_the_app(tmp_path, host_database):
    started = time.monotonic()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "DATABASE_URL", "REDIS_URL")
        and not k.startswith("INTEGRATIONS_")
    }
    env["PYTHONUNBUFFERED"] = "1"

    # 1. the distribution, built from the files it claims to need and nothing else
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "integrations", source / "integrations", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--disable-pip-version-check",
            "-w",
            tmp_path / "dist",
            source,
        ],
        cwd=tmp_path,
        env=env,
    )
    wheel = next((tmp_path / "dist").glob("*.whl"))

    # 2. a fresh virtualenv: the wheel and the dependencies it declares, nothing else
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    requirement = f"{wheel}[postgres]" if host_database else str(wheel)
    _run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    installed = _run([python, "-c", "import integrations, sys; print(integrations.__file__)"], cwd=tmp_path, env=env)
    assert "site-packages" in installed.stdout
    leaked = subprocess.run([python, "-c", "import catalog"], cwd=tmp_path, env=env, capture_output=True)
    assert leaked.returncode != 0, "the demo service's catalog app is installed"

    # 3. startproject + a host app, set up as SPEC section 12 says
    _run([venv / "bin" / "django-admin", "startproject", "host"], cwd=tmp_path, env=env)
    site = tmp_path / "host"
    manage = [python, site / "manage.py"]
    _run([*manage, "startapp", "shop"], cwd=site, env=env)
    (site / "shop" / "models.py").write_text(SHOP_MODELS)
    (site / "shop" / "sync_targets.py").write_text(SHOP_TARGETS)
    mail_dir = tmp_path / "mail"
    host_own = f"""
INSTALLED_APPS += ["shop"]
# the host's own choices, not the app's set-up: where its e-mails go (and its database)
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = {str(mail_dir)!r}
"""
    if host_database:
        host_own += f"DATABASES = {{'default': {host_database!r}}}\n"
    settings_py = site / "host" / "settings.py"
    assert "DEBUG = True" in settings_py.read_text()
    settings_py.write_text(settings_py.read_text() + SPEC_SETTINGS + host_own)
    (site / "host" / "urls.py").write_text((site / "host" / "urls.py").read_text() + SPEC_URLS)

    check = _run([*manage, "check"], cwd=site, env=env)
    assert "ERRORS" not in check.stderr + check.stdout
    _run([*manage, "makemigrations", "shop"], cwd=site, env=env)
    _run([*manage, "migrate", "--noinput"], cwd=site, env=env)
    _run(
        [*manage, "createsuperuser", "--noinput", "--username", "admin", "--email", "admin@host.example"],
        cwd=site,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": "adoption-secret-1"},
    )
    _run([*manage, "create_customer", "acme", "--name", "Acme", "--email", "tech@acme.example"], cwd=site, env=env)
    _run(
        [*manage, "create_integration", "acme", "items", "--target", "shop.item", "--max-error-rate", "0.5"],
        cwd=site,
        env=env,
    )
    key = _run([*manage, "create_api_key", "acme"], cwd=site, env=env).stdout.strip().splitlines()[-1]

    # 4. the host's web server and worker
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("runserver", "qcluster")}
    procs = [
        subprocess.Popen(
            [*map(str, manage), "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=site,
            env=env,
            stdout=logs["runserver"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        subprocess.Popen(
            [*map(str, manage), "qcluster"],
            cwd=site,
            env=env,
            stdout=logs["qcluster"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                root = requests.get(f"{base}/api/v1/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "runserver.log").read_text()
                time.sleep(0.3)
        _exercise(base, key, mail_dir, root)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for log in logs.values():
            log.close()
    for name in logs:
        text = (tmp_path / f"{name}.log").read_text()
        assert "TemplateDoesNotExist" not in text and "Traceback" not in text, f"{name}:\n{text[-4000:]}"
    print(f"adoption on {'PostgreSQL' if host_database else 'SQLite'} took {time.monotonic() - started:.0f} s")


def _exercise(base: str, key: str, mail_dir: Path, root) -> None:
    # the API root and the docs, without a key
    assert root.status_code == 200 and root.json()["endpoints"]["integrations"] == f"{base}/api/v1/integrations/"
    schema = requests.get(f"{base}/api/v1/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200 and "/api/v1/runs/{run_id}/batches/" in schema.json()["paths"]
    docs = requests.get(f"{base}/api/v1/docs/", timeout=10)
    assert docs.status_code == 200
    script = re.search(r'src="([^"]*drf_spectacular_sidecar/[^"]+\.js)"', docs.text)
    assert script and requests.get(base + script.group(1), timeout=10).status_code == 200

    # a sync through the API: 3 good records and a bad one (partial, with a run e-mail), then an update
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    assert [i["slug"] for i in api.get(f"{base}/api/v1/integrations/", timeout=10).json()["results"]] == ["items"]
    records = [{"code": f"I-{n}", "title": f"Item {n}", "price": "9.50"} for n in range(3)]
    first = _sync(api, base, "full", records + [{"code": "I-bad", "title": "Bad", "price": "nine"}])
    assert first["status"] == "partial", first
    assert (first["counts"]["created"], first["counts"]["failed"]) == (3, 1), first
    errors = api.get(f"{base}/api/v1/runs/{first['id']}/errors/", timeout=10).json()["results"]
    assert [(e["key"], e["code"]) for e in errors] == [("I-bad", "invalid")]
    second = _sync(api, base, "incremental", [{"code": "I-0", "title": "Renamed", "price": "9.50"}], deletes=["I-2"])
    assert second["status"] == "succeeded", second
    assert (second["counts"]["updated"], second["counts"]["deleted"]) == (1, 1), second

    # the run e-mail of the partial run, rendered from the app's own templates
    deadline = time.monotonic() + 30
    while not (mail_dir.exists() and any(mail_dir.iterdir())):
        assert time.monotonic() < deadline, "no run e-mail"
        time.sleep(0.3)
    mail = "".join(path.read_text() for path in mail_dir.iterdir())
    assert "tech@acme.example" in mail and first["id"] in mail

    # the admin: login, dashboard, runs, a run, the sync-file page
    staff = requests.Session()
    staff.get(f"{base}/admin/login/", timeout=10)
    login = staff.post(
        f"{base}/admin/login/?next=/admin/",
        timeout=10,
        headers={"Referer": f"{base}/admin/login/"},
        data={
            "username": "admin",
            "password": "adoption-secret-1",
            "next": "/admin/",
            "csrfmiddlewaretoken": staff.cookies["csrftoken"],
        },
    )
    assert login.status_code == 200 and login.url == f"{base}/admin/", login.url
    assert 'id="sync-dashboard"' in login.text  # the dashboard on the host's stock admin index
    pages = {
        "runs": "/admin/integrations/syncrun/",
        "run": f"/admin/integrations/syncrun/{first['id']}/change/",
        "integrations": "/admin/integrations/integration/",
        "errors": "/admin/integrations/recorderror/",
        "customers": "/admin/integrations/customer/",
    }
    for name, path in pages.items():
        page = staff.get(base + path, timeout=10)
        assert page.status_code == 200, (name, page.status_code, page.text[:3000])
        assert "TemplateDoesNotExist" not in page.text
    integrations = staff.get(base + pages["integrations"], timeout=10).text
    sync_file = re.search(r'href="(/admin/integrations/integration/\d+/sync-file/)"', integrations)
    assert sync_file, integrations[:3000]
    page = staff.get(base + sync_file.group(1), timeout=10)
    assert page.status_code == 200 and "<form" in page.text, page.text[:3000]
    run_page = staff.get(base + pages["run"], timeout=10).text
    assert "I-bad" in run_page or "errors.csv" in run_page

    # an empty full snapshot would delete every row: held; staff review it on its page and approve
    held = _sync(api, base, "full", [])
    assert held["status"] == "needs_review", held
    held_page = staff.get(f"{base}/admin/integrations/syncrun/{held['id']}/change/", timeout=10)
    assert held_page.status_code == 200 and f"/{held['id']}/review/" in held_page.text  # the review button
    review_url = f"{base}/admin/integrations/syncrun/{held['id']}/review/"
    review = staff.get(review_url, timeout=10)
    assert review.status_code == 200 and "I-1" in review.text, review.text[:3000]  # the keys it would delete
    approved = staff.post(
        review_url,
        timeout=10,
        headers={"Referer": review_url},
        data={"decision": "approve", "confirm_delete": "yes", "csrfmiddlewaretoken": staff.cookies["csrftoken"]},
    )
    assert approved.status_code == 200
    deadline = time.monotonic() + 60
    while (run := api.get(f"{base}/api/v1/runs/{held['id']}/", params={"wait": 10}, timeout=20).json())[
        "status"
    ] not in END_STATES - {"needs_review"}:
        assert time.monotonic() < deadline, run
    assert (run["status"], run["counts"]["deleted"]) == ("succeeded", 2), run


def _sync(api, base, mode, records, deletes=()) -> dict:
    run = api.post(f"{base}/api/v1/integrations/items/runs/", json={"mode": mode}, timeout=10)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    batch = api.post(
        f"{base}/api/v1/runs/{run_id}/batches/",
        timeout=10,
        json={"seq": 1, "records": records, "deletes": list(deletes)},
    )
    assert batch.status_code == 202, batch.text
    assert api.post(f"{base}/api/v1/runs/{run_id}/complete/", json={}, timeout=10).status_code == 202
    deadline = time.monotonic() + 60
    while True:
        body = api.get(f"{base}/api/v1/runs/{run_id}/", params={"wait": 10}, timeout=20).json()
        if body["status"] in END_STATES:
            return body
        assert time.monotonic() < deadline, body
