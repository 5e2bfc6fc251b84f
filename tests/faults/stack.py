"""Real processes for the fault tests and the load test: gunicorn, `manage.py qcluster`, a private
PostgreSQL cluster. Every process is started in its own session (process group), so a kill -9
takes the whole group (gunicorn's master and its workers, a cluster's sentinel and its workers),
and `Procs.stop_all()` (called from fixtures' `finally`) never leaves one behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# variables of the developer's or CI's shell that must not leak into the processes we start
_SCRUB = (
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_URL",
    "Q_CLUSTER_NAME",
    "Q_WORKERS",
    "Q_TIMEOUT",
    "Q_RETRY",
    "MEDIA_ROOT",
    "AWS_STORAGE_BUCKET_NAME",
    "PORT",
    "WEB_CONCURRENCY",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing may be down for a while: that is what we test
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("INTEGRATIONS_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE": "true",
            "EMAIL_URL": "consolemail://",
        }
    )
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict, log_dir: Path):
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _signal_group(self, sig) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)  # the session leader's pid is its group id
        except ProcessLookupError:
            pass

    def kill9(self) -> None:
        """kill -9 of the whole process group: no cleanup, no goodbye, like a machine losing power."""
        self._signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=30)

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # stragglers of the group (forked workers) too
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Procs:
    """The processes of one test: web servers and django-q2 clusters sharing one environment."""

    def __init__(self, env: dict, log_dir: Path | None = None):
        self.env = env
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="faults-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[Proc] = []

    def web(self, port: int, workers: int = 2, name: str = "web", **env) -> Proc:
        cmd = [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "project.wsgi"]
        proc = Proc(
            name,
            cmd,
            {**self.env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), **env},
            self.log_dir,
        ).start()
        self.started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: (
                proc.alive
                and requests.get(url + "/api/v1/", timeout=2).status_code in (200, 401, 404)
                or (not proc.alive and _raise(f"{name} died:\n{proc.log_tail()}"))
            ),
            60,
            f"{name} on port {port}",
        )
        proc.url = url
        return proc

    def cluster(self, name: str = "cluster", workers: int = 2, **env) -> Proc:
        cmd = [PYTHON, "manage.py", "qcluster"]
        proc = Proc(name, cmd, {**self.env, "Q_WORKERS": str(workers), **env}, self.log_dir).start()
        self.started.append(proc)
        return proc

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def stop_all(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (a test's processes owe nobody a clean exit)."""
        for proc in reversed(self.started):
            proc.stop(grace)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.log_tail()}" for p in self.started)


def _raise(message: str):
    raise AssertionError(message)


# --- a private PostgreSQL cluster (restarting the shared server would hurt everyone on it) ------


def pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class PrivatePostgres:
    """initdb + pg_ctl on a free loopback port, as the `postgres` user when we are root (the
    server refuses to run as root). `restart(mode="immediate")` is a crash: no checkpoint, and
    crash recovery empties UNLOGGED tables such as the engine's staging table."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url_base(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=100"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "immediate", down_for: float = 2.0) -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(f"{self.url_base}/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return f"{self.url_base}/{name}"

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
