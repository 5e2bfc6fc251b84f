"""The dev loop of the demo service (`make run`): it seeds once, its links follow PORT, its e-mails
go to files, and Ctrl-C stops its three processes once and cleanly."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from integrations.conf import conf
from integrations.models import ApiKey, SyncRun
from tests.support import product

ROOT = Path(settings.BASE_DIR)


def seed(tmp_path) -> str:
    out = StringIO()
    call_command("seed_demo", sample=str(tmp_path / "sample.json"), state_dir=str(tmp_path / "var"), stdout=out)
    call_command("seed_crm", stdout=out)
    return out.getvalue()


@pytest.fixture
def sample(tmp_path):
    (tmp_path / "sample.json").write_text(json.dumps([product(f"S-{i}") for i in range(5)]))


def test_a_second_seed_keeps_the_data_the_key_and_the_password(transactional_db, tmp_path, sample):
    first = seed(tmp_path)
    key_file, password_file = tmp_path / "var" / "demo-api-key.txt", tmp_path / "var" / "demo-admin-password.txt"
    raw, password = key_file.read_text().strip(), password_file.read_text().strip()
    assert raw in first and password in first and "Demo ready." in first
    assert f"{conf.BASE_URL}/admin/" in first and str(key_file) in first
    for path in (key_file, password_file):  # the demo's only copies: the owner's alone
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    runs = SyncRun.objects.count()
    assert runs == 4 and SyncRun.objects.filter(integration__slug="products").get().status == "succeeded"

    second = seed(tmp_path)
    assert SyncRun.objects.count() == runs  # no sample sync again (it would be held: "would delete ...")
    assert ApiKey.objects.filter(customer__slug="demo").count() == 1  # no new key
    assert (key_file.read_text().strip(), password_file.read_text().strip()) == (raw, password)
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert "nothing changed" in second and "seeded earlier" in second
    assert raw not in second and password not in second  # the secrets are not printed again...
    prefix = ApiKey.objects.get().prefix
    assert f"{prefix}." in second and str(key_file) in second and str(password_file) in second  # ...but where they are


def test_a_lost_key_file_gets_a_new_key(transactional_db, tmp_path, sample):
    seed(tmp_path)
    key_file = tmp_path / "var" / "demo-api-key.txt"
    old = key_file.read_text().strip()
    key_file.unlink()
    out = seed(tmp_path)
    new = key_file.read_text().strip()
    assert new != old and new in out and ApiKey.objects.get_from_key(new).customer.slug == "demo"
    assert SyncRun.objects.count() == 4


def settings_in_subprocess(**env) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "from integrations.conf import conf; "
        "print(json.dumps([conf.BASE_URL, s.EMAIL_BACKEND, str(getattr(s, 'EMAIL_FILE_PATH', ''))]))"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HOST", "PORT", "INTEGRATIONS_BASE_URL", "EMAIL_URL", "DJANGO_SETTINGS_MODULE")
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return dict(zip(("base_url", "email_backend", "email_path"), json.loads(proc.stdout)))


def test_port_reaches_the_links_and_mail_goes_to_files():
    got = settings_in_subprocess(PORT="8101")
    assert got["base_url"] == "http://127.0.0.1:8101"
    assert got["email_backend"].endswith("filebased.EmailBackend")
    assert got["email_path"] == str(ROOT / "var" / "mail")
    assert settings_in_subprocess(HOST="0.0.0.0", PORT="9000")["base_url"] == "http://127.0.0.1:9000"
    assert (
        settings_in_subprocess(PORT="8101", INTEGRATIONS_BASE_URL="https://sync.example.com")["base_url"]
        == "https://sync.example.com"
    )
    assert settings_in_subprocess(EMAIL_URL="smtp://127.0.0.1:1025")["email_backend"].endswith("smtp.EmailBackend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ctrl_c_stops_the_three_processes_once(tmp_path):
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "Q_CLUSTER_NAME": f"devloop-{port}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "project.devrun"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.3)
        time.sleep(2)  # the clusters' workers are up too
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert "Stopped." in output
    assert "Traceback" not in output and "RecursionError" not in output, output
    # nothing left behind: no server on the port any more
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
