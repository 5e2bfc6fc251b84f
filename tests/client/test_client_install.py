"""`pip install ./client` in a fresh virtual environment works, and the package imports without
the server's code (nor Django) anywhere on the path."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # pip installs the client into a fresh virtualenv
ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import sys
import integrations_client
from integrations_client import Client, verify_webhook
from integrations_client.encoding import decode_protobuf, encode_batch

batch = encode_batch([{"sku": "A", "price": 1.5, "tags": ["x"]}], seq=1, compress=False)
assert decode_protobuf(batch.body) == (1, [{"sku": "A", "price": 1.5, "tags": ["x"]}], [])
Client("http://127.0.0.1:9", "k.k")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"integrations", "django", "catalog", "project",
                                                               "rest_framework", "msgspec"})
assert not leaked, leaked
assert "site-packages" in integrations_client.__file__, integrations_client.__file__
print("ok", integrations_client.__version__)
"""


def test_fresh_venv_installs_and_imports_the_client(tmp_path):
    started = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT / "client")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # -I: isolated mode, neither the current directory nor PYTHONPATH on sys.path; run from elsewhere
    check = subprocess.run([str(python), "-I", "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("ok ")
    script = venv / "bin" / "integrations-sync"
    usage = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert usage.returncode == 0 and "integrations-sync" in usage.stdout
    print(f"fresh venv install took {time.monotonic() - started:.1f} s")
