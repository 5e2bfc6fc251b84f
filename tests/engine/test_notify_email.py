"""E-mails of SPEC section 6 (Django's locmem backend): contacts on failed, partial and needs_review;
staff on failed, needs_review and stuck runs."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from integrations import notify, services
from integrations.models import RunNotification, SyncRun
from tests.support import product, sync

S = SyncRun.Status
STAFF = ["oncall@ourco.example", "lead@ourco.example"]


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.INTEGRATIONS_STAFF_EMAILS = STAFF
    settings.INTEGRATIONS_BASE_URL = "https://sync.example.com"


def bad(sku):
    return {"sku": sku, "name": "", "price": "-1", "currency": "EUR"}


def by_recipient():
    return {tuple(m.to): m for m in mail.outbox}


def html_of(message):
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def test_a_failed_run_mails_the_contacts_and_staff(integration):
    run = sync(integration, [product("A"), bad("B"), {"name": "no key"}])
    assert run.status == S.FAILED
    mails = by_recipient()
    assert set(mails) == {("ops@acme.example",), tuple(STAFF)}

    customer_mail = mails[("ops@acme.example",)]
    assert "acme/products" in customer_mail.subject and str(run.pk) in customer_mail.subject
    assert "failed" in customer_mail.subject
    body = customer_mail.body
    assert str(run.pk) in body and '"products"' in body and "nothing was applied" in body
    assert run.message in body
    assert "Received:  3" in body and "Failed:    2" in body
    assert "batch 1, record 1, key B: invalid" in body
    assert "batch 1, record 2: missing_key" in body
    csv_url = f"https://sync.example.com/api/v1/runs/{run.pk}/errors/?format=csv"
    assert csv_url in body
    html = html_of(customer_mail)
    assert csv_url.replace("&", "&amp;") in html or csv_url in html
    assert "<td>B</td>" in html and "missing_key" in html

    staff_mail = mails[tuple(STAFF)]
    assert str(run.pk) in staff_mail.subject and "failed" in staff_mail.subject
    admin_url = f"https://sync.example.com/admin/integrations/syncrun/{run.pk}/change/"
    assert admin_url in staff_mail.body and admin_url in html_of(staff_mail)
    assert csv_url in staff_mail.body
    assert "Acme (acme)" in staff_mail.body


def test_a_partial_run_mails_only_the_contacts(integration):
    integration.max_error_rate = 0.5
    integration.save()
    run = sync(integration, [product("A"), bad("B")])
    assert run.status == S.PARTIAL
    assert [m.to for m in mail.outbox] == [["ops@acme.example"]]
    message = mail.outbox[0]
    assert "partial" in message.subject
    assert "some records were skipped" in message.body
    assert "Created:   1" in message.body and "Failed:    1" in message.body
    assert "key B: invalid" in message.body


def test_a_held_run_mails_the_contacts_and_staff(integration):
    sync(integration, [product(f"P{i}") for i in range(20)])
    assert mail.outbox == []  # succeeded: nobody is mailed
    held = sync(integration, [product("P1")])
    assert held.status == S.NEEDS_REVIEW
    mails = by_recipient()
    assert set(mails) == {("ops@acme.example",), tuple(STAFF)}
    assert "needs review" in mails[("ops@acme.example",)].subject
    assert "held for review" in mails[("ops@acme.example",)].body
    assert "Deleted:   19" in mails[("ops@acme.example",)].body
    assert "approve or reject" in mails[tuple(STAFF)].body
    # the approval's success mails nobody
    mail.outbox.clear()
    services.run_review(run=held, approve=True, user="staff")
    assert mail.outbox == []


def test_succeeded_and_cancelled_runs_mail_nobody(integration):
    sync(integration, [product("A")])
    run, _ = services.run_create(integration=integration)
    services.run_cancel(run=run)
    assert mail.outbox == []


def test_the_integrations_contacts_come_before_the_customers(integration):
    integration.contacts = ["feed@acme.example", "dev@acme.example"]
    integration.save()
    sync(integration, [bad("B")])
    assert ["feed@acme.example", "dev@acme.example"] in [m.to for m in mail.outbox]
    assert ["ops@acme.example"] not in [m.to for m in mail.outbox]


def test_no_staff_configured_means_no_staff_mail(integration, settings):
    settings.INTEGRATIONS_STAFF_EMAILS = []
    sync(integration, [bad("B")])
    assert [m.to for m in mail.outbox] == [["ops@acme.example"]]


def test_only_the_first_20_errors_are_listed(integration):
    run = sync(integration, [bad(f"K{i:02d}") for i in range(25)])
    assert run.failed == 25
    body = by_recipient()[("ops@acme.example",)].body
    assert "First 20 errors:" in body
    assert "key K19: invalid" in body and "key K20" not in body
    assert "... and 5 more." in body


def test_a_stuck_run_alerts_staff_once(integration, settings):
    settings.INTEGRATIONS_STUCK_AFTER = 600
    long_ago = timezone.now() - timedelta(hours=2)
    run = SyncRun.objects.create(
        integration=integration,
        mode="full",
        status=S.PROCESSING,
        completed_at=long_ago,
        started_at=long_ago,
        heartbeat_at=timezone.now(),
        last_error="OSError: disk full",
    )
    assert services.sweep()["stuck"] == 1
    assert [m.to for m in mail.outbox] == [STAFF]
    message = mail.outbox[0]
    assert "stuck" in message.subject and str(run.pk) in message.subject and "acme/products" in message.subject
    assert "processing since" in message.body and "more than 10 minutes" in message.body
    assert "OSError: disk full" in message.body
    assert f"/admin/integrations/syncrun/{run.pk}/change/" in message.body
    assert "processing" in html_of(message)
    services.sweep()
    notify.stuck_alert(run_id=run.pk)  # a task delivered twice
    assert len(mail.outbox) == 1


def test_a_redelivered_task_sends_its_mails_once(integration):
    run = sync(integration, [bad("B")])
    assert len(mail.outbox) == 2
    notify.run_event(run_id=run.pk, status=run.status)
    assert len(mail.outbox) == 2
    assert RunNotification.objects.filter(run=run, event="run.failed").count() == 1


def test_dry_runs_mail_nobody(integration):
    run = sync(integration, [bad("B")], dry_run=True)
    assert run.status == S.FAILED
    assert mail.outbox == []


def test_a_failing_mail_server_leaves_the_mails_to_the_retry(integration, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    run = sync(integration, [product("A")])
    SyncRun.objects.filter(pk=run.pk).update(status=S.FAILED)
    with pytest.raises(OSError):
        notify.run_event(run_id=run.pk, status=S.FAILED)
    assert not RunNotification.objects.filter(run=run).exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    notify.run_event(run_id=run.pk, status=S.FAILED)
    assert len(mail.outbox) == 2
