from django.conf import settings
from django.core import checks


@checks.register()
def q_cluster_settings(app_configs, **kwargs):
    errors = []
    q = getattr(settings, "Q_CLUSTER", {})
    if not any(k in q for k in ("orm", "redis", "sqs", "mongo", "ironmq", "disque")):
        errors.append(checks.Error("Q_CLUSTER names no broker; django-q2 would silently use Redis", id="integrations.E001"))
    if q.get("retry", 60) <= q.get("timeout", 0):
        errors.append(checks.Error("Q_CLUSTER retry must exceed timeout or tasks run twice", id="integrations.E002"))
    return errors
