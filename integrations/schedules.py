"""The periodic tasks of the service, created idempotently after every migrate (never twice)."""

from .conf import conf
from .queue import Task


def schedule_specs() -> dict[str, dict]:
    from django_q.models import Schedule

    sweep_minutes = max(1, round(conf.SWEEP_SECONDS / 60))  # django-q2 intervals are whole minutes
    return {
        "integrations.sweep": {"func": str(Task.SWEEP), "schedule_type": Schedule.MINUTES, "minutes": sweep_minutes},
        # run by the webhook cluster when there is one (django-q2 hands a schedule with a `cluster`
        # to that cluster only); else by the default one
        "integrations.deliver_webhooks": {
            "func": str(Task.DELIVER_DUE_WEBHOOKS),
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "cluster": conf.WEBHOOK_CLUSTER or None,
        },
        "integrations.purge": {"func": str(Task.PURGE), "schedule_type": Schedule.DAILY},
    }


def ensure_schedules(sender=None, using="default", **kwargs):
    from django.apps import apps

    if not apps.is_installed("django_q"):  # the system check integrations.E003 says so (migrate --skip-checks)
        return
    from django_q.models import Schedule

    for name, spec in schedule_specs().items():
        Schedule.objects.using(using).update_or_create(name=name, defaults={**spec, "repeats": -1})
