"""Reporting back (SPEC section 6): what happens after a run reaches an end state or needs_review,
and when a run is stuck. Webhooks are in webhooks.py; the e-mails are here.

- the customer's contacts (Integration.recipients) hear about failed, partial and needs_review runs;
- staff (INTEGRATIONS_STAFF_EMAILS) about failed, needs_review, stuck and behind-schedule runs
  (the conditions of conditions.py). A condition is alerted once per run; when more than
  INTEGRATIONS_ALERT_DIGEST_AFTER runs hit it in one sweep (a worker outage stalls them all at
  once), staff get one digest listing them instead of an e-mail each.
Dry runs are previews (often a staff member's, from the admin's "sync a file" page): they get
their webhook, never an e-mail. Each event's e-mails are sent once (RunNotification), whatever
the number of times its task is delivered.
"""

import contextlib
import logging

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from . import conditions, webhooks
from .conf import conf
from .models import RecordError, RunNotification, SyncRun
from .queue import Task, enqueue
from .selectors import run_errors

log = logging.getLogger("integrations")
Status = SyncRun.Status

CUSTOMER_EVENTS = (Status.FAILED, Status.PARTIAL, Status.NEEDS_REVIEW)
STAFF_EVENTS = conditions.FAILING  # what makes an integration "failing" (conditions.py)
ERRORS_IN_MAIL = 20
STUCK = conditions.STUCK
BEHIND = conditions.BEHIND
STATUS_LABELS = {"needs_review": "needs review", STUCK: "stuck", BEHIND: "behind schedule"}


def run_event(*, run_id, status: str) -> None:
    """Called (as a task) after a run reaches an end state or needs_review."""
    run = SyncRun.objects.select_related("integration__customer").filter(pk=run_id).first()
    if run is None:
        return
    delivery, created = webhooks.delivery_create(run=run, status=status)
    if delivery is not None and created:
        # the first try at once, by the webhook cluster; failures wait for deliver_due()
        enqueue(Task.DELIVER_WEBHOOK, delivery.pk, cluster=conf.WEBHOOK_CLUSTER or None)
    if run.dry_run:
        return
    recipients = run.integration.recipients if status in CUSTOMER_EVENTS else []
    staff = conf.STAFF_EMAILS if status in STAFF_EVENTS else []
    if recipients or staff:
        with _once(run, f"run.{status}", [*recipients, *staff]) as first:
            if first:
                context = run_context(run, status)
                if recipients:
                    _send("run_report", context, recipients)
                if staff:
                    _send("staff_alert", context, staff)


def stuck_alert(*, run_id) -> None:
    """Called once when a run has been processing longer than INTEGRATIONS_STUCK_AFTER."""
    condition_alert(condition=STUCK, run_ids=[run_id])


def condition_alert(*, condition: str, run_ids) -> int:
    """Alert staff about the runs (still) in `condition`, each at most once; one digest when there
    are more than INTEGRATIONS_ALERT_DIGEST_AFTER. Returns the number of runs alerted now."""
    staff = conf.STAFF_EMAILS
    if not staff or not run_ids:
        return 0
    runs = list(
        SyncRun.objects.select_related("integration__customer")
        .filter(pk__in=list(run_ids), status=conditions.CONDITION_STATUS[condition])
        .order_by("created_at")
    )
    event = f"run.{condition}"
    if len(runs) <= conf.ALERT_DIGEST_AFTER:
        sent = 0
        for run in runs:
            with _once(run, event, staff) as first:
                if first:
                    _send("staff_alert", run_context(run, condition), staff)
                    sent += 1
        return sent
    fresh, notices = [], []
    for run in runs:
        try:
            with transaction.atomic():
                notices.append(RunNotification.objects.create(run=run, event=event, recipients=list(staff)))
            fresh.append(run)
        except IntegrityError:
            continue  # alerted already, alone or in an earlier digest
    if not fresh:
        return 0
    base = conf.BASE_URL.rstrip("/")
    try:
        _send(
            "staff_digest",
            {
                "condition": condition,
                "label": STATUS_LABELS[condition],
                "runs": fresh,
                "stuck_after_minutes": conf.STUCK_AFTER // 60,
                "behind_after_minutes": conf.BEHIND_AFTER // 60,
                "admin_url": f"{base}{_changelist_path()}?status__exact={conditions.CONDITION_STATUS[condition]}",
            },
            staff,
        )
    except Exception:
        RunNotification.objects.filter(pk__in=[n.pk for n in notices]).delete()  # the retry sends it
        raise
    return len(fresh)


def deliver_due() -> int:
    """The schedule's task: send the webhook retries that are due."""
    return webhooks.deliver_due()


def run_context(run: SyncRun, event: str) -> dict:
    integration = run.integration
    base = conf.BASE_URL.rstrip("/")
    errors = list(run_errors(run)[:ERRORS_IN_MAIL]) if event not in conditions.CONDITION_STATUS else []
    total_errors = RecordError.objects.filter(run=run).count() if errors else 0
    return {
        "run": run,
        "event": event,
        "status_label": STATUS_LABELS.get(event, event),
        "integration": integration,
        "customer": integration.customer,
        "counts": run.counts,
        "errors": errors,
        "more_errors": max(0, total_errors - len(errors)),
        "errors_csv_url": f"{base}/api/v1/runs/{run.pk}/errors/?format=csv",
        "run_url": f"{base}/api/v1/runs/{run.pk}/",
        "changes_csv_url": f"{base}/api/v1/runs/{run.pk}/changes/?format=csv",
        "admin_url": base + _admin_path(run),
        "stuck_after_minutes": conf.STUCK_AFTER // 60,
        "behind_after_minutes": conf.BEHIND_AFTER // 60,
    }


def _send(template: str, context: dict, to: list[str]) -> None:
    subject = " ".join(render_to_string(f"integrations/email/{template}_subject.txt", context).split())
    text = render_to_string(f"integrations/email/{template}.txt", context)
    html = render_to_string(f"integrations/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=list(to))
    message.attach_alternative(html, "text/html")
    message.send()


@contextlib.contextmanager
def _once(run: SyncRun, event: str, recipients: list[str]):
    """Yield True the first time an event's e-mails go out, False when an earlier delivery of the
    task sent them. If sending fails, the mark is taken back so that the task's retry sends them."""
    try:
        with transaction.atomic():
            notice = RunNotification.objects.create(run=run, event=event, recipients=list(recipients))
    except IntegrityError:
        yield False
        return
    try:
        yield True
    except Exception:
        notice.delete()
        raise


def _changelist_path() -> str:
    try:
        return reverse("admin:integrations_syncrun_changelist")
    except NoReverseMatch:
        return "/admin/integrations/syncrun/"


def _admin_path(run: SyncRun) -> str:
    try:
        return reverse("admin:integrations_syncrun_change", args=[run.pk])
    except NoReverseMatch:
        return f"/admin/integrations/syncrun/{run.pk}/change/"
