"""SPEC section 14: GET /metrics, Prometheus text, names prefixed `integrations_`, behind
INTEGRATIONS_METRICS_TOKEN (404 without it, 401 with a wrong token). Counters move once per run,
batch, webhook attempt and sweep; the state gauges agree with the admin dashboard."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations import conditions, metrics, services
from integrations.models import SyncRun
from tests.support import product, sync

S = SyncRun.Status
TOKEN = "metrics-token-for-tests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token(settings):
    settings.INTEGRATIONS_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client) -> dict:
    """{(name, frozenset(labels)): value} of every sample."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_without_the_token_setting(client, db, settings):
    settings.INTEGRATIONS_METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404


def test_metrics_need_the_right_bearer_token(client, db, token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {n for n in names if n.startswith("integrations_")} >= {
        "integrations_runs_finished",
        "integrations_records",
        "integrations_run_duration_seconds",
        "integrations_run_queue_wait_seconds",
        "integrations_batch_accept_seconds",
        "integrations_batch_records",
        "integrations_webhook_deliveries",
        "integrations_sweeper_actions",
        "integrations_runs",
        "integrations_oldest_queued_run_age_seconds",
        "integrations_runs_held",
        "integrations_runs_stuck",
        "integrations_runs_behind",
        "integrations_integrations_failing",
    }


def test_a_sync_counts_its_run_records_and_batches(client, integration, token):
    integration.max_error_rate = 0.5
    integration.save()
    before = scrape(client)
    run = sync(
        integration,
        [product("A"), product("B"), {"sku": "C", "name": "", "price": "1", "currency": "EUR"}],
        [product("D")],
    )
    run.refresh_from_db()
    assert run.status == S.PARTIAL
    after = scrape(client)
    label = "acme/products"

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("integrations_runs_finished_total", integration=label, status="partial") == 1
    assert {o: delta("integrations_records_total", integration=label, outcome=o) for o in metrics.OUTCOMES} == {
        "received": 4,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 1,
    }
    assert delta("integrations_batch_records_count") == 2  # per batch, not per record
    assert delta("integrations_batch_records_sum") == 4
    assert delta("integrations_batch_accept_seconds_count") == 2
    assert delta("integrations_run_duration_seconds_count", status="partial") == 1
    assert delta("integrations_run_queue_wait_seconds_count") == 1
    # a second, identical run: unchanged records
    sync(integration, [product("A"), product("B"), product("D")], mode="incremental")
    again = scrape(client)
    assert (
        value(again, "integrations_records_total", integration=label, outcome="unchanged")
        - value(after, "integrations_records_total", integration=label, outcome="unchanged")
        == 3
    )


def test_webhook_deliveries_and_sweeper_actions_are_counted(client, integration, token, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    integration.webhook_url = httpserver.url_for("/hook")
    integration.webhook_secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    integration.save()
    before = scrape(client)
    sync(integration, [product("A")])
    old = SyncRun.objects.create(integration=integration, mode="full")
    SyncRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert services.sweep()["cancelled"] == 1
    after = scrape(client)
    assert (
        value(after, "integrations_webhook_deliveries_total", outcome="delivered")
        - value(before, "integrations_webhook_deliveries_total", outcome="delivered")
        >= 1
    )
    assert (
        value(after, "integrations_sweeper_actions_total", action="cancelled")
        - value(before, "integrations_sweeper_actions_total", action="cancelled")
        == 1
    )


def test_state_gauges_come_from_the_database_and_agree_with_the_admin(
    client, admin_client, integration, other_customer, token, settings
):
    settings.INTEGRATIONS_STUCK_AFTER = 600
    settings.INTEGRATIONS_BEHIND_AFTER = 300
    long_ago = timezone.now() - timedelta(hours=2)
    late = services.integration_create(customer=other_customer, slug="late", target="catalog.product")
    stuck = SyncRun.objects.create(
        integration=late,
        mode="full",
        status=S.PROCESSING,
        completed_at=long_ago,
        started_at=long_ago,
        heartbeat_at=timezone.now(),
    )
    SyncRun.objects.create(integration=late, mode="full", status=S.QUEUED, completed_at=long_ago)
    SyncRun.objects.create(
        integration=integration,
        mode="full",
        status=S.NEEDS_REVIEW,
        completed_at=long_ago,
        started_at=long_ago,
        finished_at=long_ago,
    )
    samples = scrape(client)
    assert value(samples, "integrations_runs", integration="globex/late", status="processing") == 1
    assert value(samples, "integrations_runs", integration="globex/late", status="queued") == 1
    assert value(samples, "integrations_runs", integration="acme/products", status="needs_review") == 1
    assert 7100 < value(samples, "integrations_oldest_queued_run_age_seconds") < 7300
    assert value(samples, "integrations_runs_stuck") == 1
    assert value(samples, "integrations_runs_held") == 1
    assert value(samples, "integrations_runs_behind") == 1
    assert value(samples, "integrations_integrations_failing") == 1  # acme/products: its last run is held

    page = admin_client.get("/admin/").content.decode()
    assert f"Stuck runs ({int(value(samples, 'integrations_runs_stuck'))})" in page and str(stuck.pk)[:8] in page
    assert f"Integrations failing now ({int(value(samples, 'integrations_integrations_failing'))})" in page
    assert f"{int(value(samples, 'integrations_runs_held'))} run held for review" in page
    assert f"{int(value(samples, 'integrations_runs_behind'))} run queued longer than 300 seconds" in page
    assert conditions.summary() == {"stuck": 1, "held": 1, "failing": 1, "behind": 1}


def test_worker_processes_counters_reach_the_scrape_through_the_multiprocess_directory(
    client, db, token, tmp_path, monkeypatch
):
    """A django-q2 worker is another process: with PROMETHEUS_MULTIPROC_DIR shared, what it counts
    is in the web process's answer."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    code = (
        "import django; django.setup()\n"
        "from integrations import metrics\n"
        "metrics.batch_accepted(seconds=0.02, records=1234)\n"
        "metrics.webhook_attempted('retry')\n"
        "metrics.sweeper_acted({'requeued': 2})\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    samples = scrape(client)
    assert value(samples, "integrations_batch_records_sum") == 1234
    assert value(samples, "integrations_webhook_deliveries_total", outcome="retry") == 1
    assert value(samples, "integrations_sweeper_actions_total", action="requeued") == 2
    assert value(samples, "integrations_runs_held") == 0  # the state still comes from the database


def test_serve_metrics_answers_a_worker_machines_counters(db, token, tmp_path):
    """A machine with workers only serves its multiprocess directory itself, behind the same token."""
    import socket
    import time
    import urllib.error
    import urllib.request

    directory = tmp_path / "prometheus"
    directory.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "INTEGRATIONS_METRICS_TOKEN": TOKEN,
    }
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()\nfrom integrations import metrics\nmetrics.webhook_attempted('failed')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve_metrics", "--port", str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        body = None
        for _ in range(100):
            try:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
                body = urllib.request.urlopen(request, timeout=2).read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert body is not None and 'integrations_webhook_deliveries_total{outcome="failed"} 1.0' in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=2)
        assert refused.value.code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_nothing_is_counted_per_record(client, integration, token):
    """A 5,000-record batch moves the same samples as a 1-record batch: the counters are per batch
    and per run (a sample per record would show as a per-record series or count)."""
    before = scrape(client)
    sync(integration, [product(f"P{i:05d}") for i in range(5000)])
    big = {k: v - before.get(k, 0) for k, v in scrape(client).items()}
    assert big[("integrations_batch_records_count", frozenset())] == 1
    assert json.dumps(sorted(str(k) for k, v in big.items() if v)).count("P0") == 0


# --- staff alerts on the same conditions: once per run and condition, a digest when many fire ---

STAFF = ["oncall@ourco.example"]


def stalled_runs(integration_factory, n):
    long_ago = timezone.now() - timedelta(hours=2)
    return [
        SyncRun.objects.create(
            integration=integration_factory(i),
            mode="full",
            status=S.PROCESSING,
            completed_at=long_ago,
            started_at=long_ago,
            heartbeat_at=timezone.now(),
        )
        for i in range(n)
    ]


def test_many_stuck_runs_at_once_make_one_digest_and_no_later_alerts(customer, settings, mailoutbox):
    settings.INTEGRATIONS_STAFF_EMAILS = STAFF
    settings.INTEGRATIONS_STUCK_AFTER = 600
    settings.INTEGRATIONS_ALERT_DIGEST_AFTER = 3
    runs = stalled_runs(
        lambda i: services.integration_create(customer=customer, slug=f"feed-{i}", target="catalog.product"), 5
    )
    assert services.sweep()["stuck"] == 5
    assert len(mailoutbox) == 1
    digest = mailoutbox[0]
    assert digest.to == STAFF and digest.subject == "[integrations] 5 runs stuck"
    assert all(str(run.pk) in digest.body for run in runs) and "acme/feed-4" in digest.body
    services.sweep()
    from integrations import notify

    notify.stuck_alert(run_id=runs[0].pk)  # a late single alert of one of them: already told
    assert len(mailoutbox) == 1


def test_a_few_stuck_runs_get_an_alert_each(customer, settings, mailoutbox):
    settings.INTEGRATIONS_STAFF_EMAILS = STAFF
    settings.INTEGRATIONS_STUCK_AFTER = 600
    settings.INTEGRATIONS_ALERT_DIGEST_AFTER = 3
    stalled_runs(
        lambda i: services.integration_create(customer=customer, slug=f"feed-{i}", target="catalog.product"), 2
    )
    assert services.sweep()["stuck"] == 2
    assert sorted(m.subject.split(": run ")[0] for m in mailoutbox) == [
        "[integrations] acme/feed-0",
        "[integrations] acme/feed-1",
    ]


def test_a_run_behind_schedule_alerts_staff_once(integration, settings, mailoutbox, client, token):
    settings.INTEGRATIONS_STAFF_EMAILS = STAFF
    settings.INTEGRATIONS_BEHIND_AFTER = 300
    long_ago = timezone.now() - timedelta(hours=1)
    # a run ahead of it is still processing (alive: its heartbeat is fresh), so it waits
    SyncRun.objects.create(
        integration=integration,
        mode="full",
        status=S.PROCESSING,
        completed_at=long_ago,
        started_at=timezone.now() - timedelta(minutes=10),
        heartbeat_at=timezone.now(),
    )
    waiting = SyncRun.objects.create(integration=integration, mode="full", status=S.QUEUED, completed_at=long_ago)
    assert services.sweep()["behind"] == 1
    assert [m.subject for m in mailoutbox] == [f"[integrations] acme/products: run behind schedule: {waiting.pk}"]
    assert "queued since" in mailoutbox[0].body and "more than 5 minutes" in mailoutbox[0].body
    assert services.sweep()["behind"] == 0
    assert len(mailoutbox) == 1
    assert value(scrape(client), "integrations_runs_behind") == 1  # the gauge counts what was alerted
