"""SPEC section 14: LOG_FORMAT=json gives one JSON object a line with the request id, task, run,
integration, customer and batch of whatever is being handled; X-Request-ID is taken (when safe)
and returned. SENTRY_DSN turns error tracking on; a task's error carries its run as tags."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from integrations import logcontext, services, tasks
from tests.support import product, sync

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """The project's JSON handler (settings.LOGGING: the context filter and the json formatter)
    on the root logger, writing into a buffer; returns a function giving the parsed lines."""
    config = django_settings.LOGGING["formatters"]["json"]
    formatter = import_string(config["()"])(
        fmt=config["fmt"], datefmt=config["datefmt"], rename_fields=config["rename_fields"]
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(logcontext.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.fixture
def api(client, customer):
    _, raw = services.api_key_create(customer=customer, name="logs")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


def test_the_request_id_is_returned_generated_when_absent(client, db):
    response = client.get("/healthz")
    generated = response["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/healthz")["X-Request-ID"] != generated


@pytest.mark.parametrize(
    "given, kept",
    [
        ("req-7f3a.b:2", True),
        ("x" * 128, True),
        ("x" * 129, False),  # bounded length
        ('evil"} {"run_id": "1', False),  # no quotes, braces or spaces to forge fields with
        ("line\nbreak", False),
        ("", False),
    ],
)
def test_a_callers_request_id_is_kept_only_when_safe(client, db, given, kept):
    returned = client.get("/healthz", HTTP_X_REQUEST_ID=given)["X-Request-ID"]
    assert (returned == given) is kept
    if not kept:
        assert len(returned) == 32


def test_every_line_of_a_request_and_its_tasks_carries_the_context(api, integration, json_lines):
    headers = {"HTTP_X_REQUEST_ID": "sync-42"}
    run_id = api.post(
        "/api/v1/integrations/products/runs/", {"mode": "full"}, content_type="application/json", **headers
    ).json()["id"]
    body = {"seq": 1, "records": [product("A"), product("B")]}
    assert (
        api.post(f"/api/v1/runs/{run_id}/batches/", body, content_type="application/json", **headers).status_code == 202
    )
    # tasks run inline here, after the request's commit: inside the request, so with its id too
    response = api.post(f"/api/v1/runs/{run_id}/complete/", {}, content_type="application/json", **headers)
    assert response.status_code == 202 and response["X-Request-ID"] == "sync-42"
    bad = api.post(f"/api/v1/runs/{run_id}/batches/", body, content_type="application/json", **headers)
    assert bad.status_code == 409  # logged by Django at WARNING, inside the request

    lines = json_lines()
    validated = [ln for ln in lines if "batch 1 validated" in ln["message"]]
    assert validated == [
        {
            **validated[0],
            "request_id": "sync-42",
            "task": "validate_batch",
            "run_id": run_id,
            "integration": "products",
            "customer": "acme",
            "batch_seq": 1,
        }
    ]
    finished = [ln for ln in lines if ln["message"].startswith(f"run {run_id} succeeded")]
    assert finished and finished[0]["task"] == "apply_run" and finished[0]["customer"] == "acme"
    conflict = [ln for ln in lines if ln["logger"] == "django.request"]
    assert conflict and conflict[0]["run_id"] == run_id and conflict[0]["customer"] == "acme"
    assert conflict[0]["request_id"] == "sync-42" and conflict[0]["level"] == "WARNING"
    assert all(set(logcontext.FIELDS) <= set(ln) for ln in lines)


def test_a_task_on_its_own_carries_its_run_and_nothing_of_the_last_one(integration, json_lines):
    run = sync(integration, [product("A")])
    log = logging.getLogger("integrations")
    log.warning("between tasks")
    tasks.run_finished(str(run.pk), run.status)
    with logcontext.task_scope(task="example", **tasks._run_context(str(run.pk))):
        log.warning("inside")
    lines = json_lines()
    between = next(ln for ln in lines if ln["message"] == "between tasks")
    assert {k: between[k] for k in logcontext.FIELDS} == dict.fromkeys(logcontext.FIELDS)
    inside = next(ln for ln in lines if ln["message"] == "inside")
    assert (inside["run_id"], inside["integration"], inside["customer"]) == (str(run.pk), "products", "acme")


def test_log_format_json_configures_the_project_handler(tmp_path):
    """The settings module itself: LOG_FORMAT=json makes every line a JSON object."""
    code = (
        "import django, logging; django.setup()\n"
        "from integrations import logcontext\n"
        "with logcontext.bind(run_id='r-1', task='t'):\n"
        "    logging.getLogger('integrations').info('hello')\n"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("DATABASE_URL", None)
    err = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stderr
    line = json.loads(err.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["run_id"] == "r-1" and line["task"] == "t"
    assert line["level"] == "INFO" and line["logger"] == "integrations" and "T" in line["time"]


# --- Sentry -------------------------------------------------------------------------------------


def test_without_sentry_dsn_sentry_is_not_even_imported():
    code = "import sys, django; django.setup(); print('sentry_sdk' in sys.modules)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("SENTRY_DSN", None)
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "False"
    env["SENTRY_DSN"] = "http://public@127.0.0.1:9/1"  # nothing is sent: nothing happens
    code = (
        "import sys, django; django.setup(); import sentry_sdk; "
        "print(sentry_sdk.get_client().is_active(), sorted(sentry_sdk.get_client().integrations)[:0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip().startswith("True")


@pytest.fixture
def sentry_events():
    """sentry-sdk on, with the project's integrations, and a transport that keeps the envelopes
    in memory instead of sending them anywhere."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.transport import Transport

    events = []

    class Keep(Transport):
        def capture_envelope(self, envelope):
            for item in envelope.items:
                if item.type == "event":
                    events.append(item.payload.json)

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=Keep(),
        integrations=[DjangoIntegration()],
        default_integrations=True,
    )
    yield events
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: off again


def test_a_task_error_reaches_sentry_with_the_run_integration_and_customer(integration, sentry_events, settings):
    from integrations.models import Integration, SyncRun

    settings.INTEGRATIONS_EARLY_VALIDATION = False  # the batch waits for the task below

    run, _ = services.run_create(integration=integration)
    services.batch_receive(
        run=run, seq=1, body=json.dumps({"seq": 1, "records": [product("A")]}).encode(), content_type="application/json"
    )
    batch = run.batches.get()
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.PROCESSING, completed_at=run.created_at)
    Integration.objects.filter(pk=integration.pk).update(target="gone.target")  # a deploy removed it
    tasks.validate_batch(batch.pk)  # recorded on the run (failed at once: not retryable), not raised again
    import sentry_sdk

    sentry_sdk.flush()
    errors = [e for e in sentry_events if e.get("exception")]
    assert len(errors) == 1
    tags = errors[0]["tags"]
    assert tags["run_id"] == str(run.pk) and tags["integration"] == "products" and tags["customer"] == "acme"
    assert tags["task"] == "validate_batch" and tags["batch_seq"] in (1, "1")
    run.refresh_from_db()
    assert "gone.target" in run.last_error  # the run keeps its own record of the error too
    assert run.status == SyncRun.Status.FAILED and "gone.target" not in run.message
