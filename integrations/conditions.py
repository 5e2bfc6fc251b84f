"""What "stuck", "held", "failing" and "behind schedule" mean, in one place (issue 16, point 5).

The admin dashboard lists these, `/metrics` counts them and the sweeper alerts staff about them,
all from the querysets below, so the three can never disagree:

- stuck:   processing for longer than INTEGRATIONS_STUCK_AFTER since it started;
- held:    a (non dry) run waiting for a staff review (`needs_review`);
- failing: an integration whose latest settled (non dry) run failed or is held;
- needs attention: an integration whose latest settled (non dry) run did not succeed: failed,
           partial, held or cancelled (a rejected review is cancelled): what the admin index lists;
- behind:  a completed run still queued INTEGRATIONS_BEHIND_AFTER seconds after `complete`
           (a worker shortage, or a run ahead of it that will not finish).
"""

from datetime import timedelta

from django.db.models import Min, OuterRef, Subquery
from django.utils import timezone

from .conf import conf
from .models import Integration, SyncRun

Status = SyncRun.Status
STUCK, BEHIND = "stuck", "behind"
# the state a stuck or behind run is in (and must still be in for its alert to go out: notify.py)
CONDITION_STATUS = {STUCK: Status.PROCESSING, BEHIND: Status.QUEUED}


def stuck_runs(now=None):
    since = (now or timezone.now()) - timedelta(seconds=conf.STUCK_AFTER)
    return SyncRun.objects.filter(status=CONDITION_STATUS[STUCK], started_at__lt=since)


def held_runs():
    return SyncRun.objects.filter(status=Status.NEEDS_REVIEW, dry_run=False)


def behind_runs(now=None):
    since = (now or timezone.now()) - timedelta(seconds=conf.BEHIND_AFTER)
    return SyncRun.objects.filter(status=CONDITION_STATUS[BEHIND], completed_at__lt=since)


FAILING = (Status.FAILED, Status.NEEDS_REVIEW)
NEEDS_ATTENTION = (Status.FAILED, Status.PARTIAL, Status.NEEDS_REVIEW, Status.CANCELLED)


def _by_last_settled_run(statuses):
    """Integrations whose latest settled (non dry) run is in `statuses`, annotated with that run
    (last_status, last_run_id, last_message, last_finished)."""
    last = SyncRun.objects.filter(
        integration=OuterRef("pk"), dry_run=False, status__in=SyncRun.SETTLED_STATES
    ).order_by("-created_at")
    return Integration.objects.annotate(
        last_status=Subquery(last.values("status")[:1]),
        last_run_id=Subquery(last.values("pk")[:1]),
        last_message=Subquery(last.values("message")[:1]),
        last_finished=Subquery(last.values("finished_at")[:1]),
    ).filter(last_status__in=statuses)


def failing_integrations():
    """Integrations whose latest settled (non dry) run failed or is held for review."""
    return _by_last_settled_run(FAILING)


def attention_integrations():
    """Integrations whose latest settled (non dry) run failed, is partial, is held or was
    cancelled (rejected at review included): each wants a person to look."""
    return _by_last_settled_run(NEEDS_ATTENTION)


def oldest_queued_age(now=None) -> float:
    """Seconds the longest-waiting completed run has been queued (0 when none is)."""
    now = now or timezone.now()
    oldest = SyncRun.objects.filter(status=Status.QUEUED).aggregate(at=Min("completed_at"))["at"]
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def summary(now=None) -> dict[str, int]:
    """The count of each condition now: what /metrics exports as gauges."""
    now = now or timezone.now()
    return {
        "stuck": stuck_runs(now).count(),
        "held": held_runs().count(),
        "failing": failing_integrations().count(),
        "behind": behind_runs(now).count(),
    }
