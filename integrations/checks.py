"""System checks of the host's set-up (SPEC section 12): each names what is missing or inconsistent
and, in its hint, the fix. They run before `migrate` does anything and at every `runserver`/`check`,
so a host learns it at startup, not from a crash in a post_migrate hook or in a worker."""

from django.apps import apps
from django.conf import settings
from django.core import checks

# the apps the integrations app needs beside it, and what for
REQUIRED_APPS = {
    "rest_framework": "the batch API is built on Django REST framework",
    "rest_framework_api_key": "API keys extend its key model and hashing",
    "django_q": "runs are processed by django-q2 workers",
    "drf_spectacular": "the API's OpenAPI schema and docs pages",
    "drf_spectacular_sidecar": "the docs pages' scripts and styles, served without a CDN",
}
# django-q2 brokers, by their Q_CLUSTER key
BROKER_KEYS = ("orm", "redis", "sqs", "mongo", "ironmq", "disque")
# brokers that re-deliver a task not acknowledged within `retry` seconds
RETRYING_BROKERS = ("orm", "sqs", "mongo", "ironmq", "disque")
Q_CLUSTER_EXAMPLE = 'Q_CLUSTER = {"name": "myproject", "orm": "default"}'


def missing_apps() -> list[str]:
    return [name for name in REQUIRED_APPS if not apps.is_installed(name)]


def missing_apps_message(missing: list[str]) -> str:
    listed = ", ".join(f'"{name}" ({REQUIRED_APPS[name]})' for name in missing)
    return f"The integrations app needs these apps in INSTALLED_APPS: {listed}."


INSTALLED_APPS_HINT = (
    'INSTALLED_APPS += ["rest_framework", "rest_framework_api_key", "django_q", "drf_spectacular", '
    '"drf_spectacular_sidecar", "integrations"] (README: "Add it to your project")'
)


@checks.register()
def required_apps(app_configs, **kwargs):
    return [
        checks.Error(
            f'"{name}" is not in INSTALLED_APPS: {REQUIRED_APPS[name]}.',
            hint=f'Add "{name}" to INSTALLED_APPS; all of them: {INSTALLED_APPS_HINT}',
            id="integrations.E003",
        )
        for name in missing_apps()
    ]


@checks.register()
def q_cluster_settings(app_configs, **kwargs):
    q = getattr(settings, "Q_CLUSTER", None)
    if not isinstance(q, dict):
        return [
            checks.Error(
                "Q_CLUSTER is not set: django-q2 would send every task to a Redis server on localhost.",
                hint=f"Name a broker, e.g. the database: {Q_CLUSTER_EXAMPLE} (any django-q2 broker).",
                id="integrations.E001",
            )
        ]
    errors = []
    brokers = [key for key in BROKER_KEYS if q.get(key)]
    if not brokers:
        errors.append(
            checks.Error(
                "Q_CLUSTER names no broker: django-q2 would silently use Redis on localhost.",
                hint=f'Add a broker key, e.g. "orm": "default" ({Q_CLUSTER_EXAMPLE}), or "redis": "redis://...".',
                id="integrations.E001",
            )
        )
    if q.get("orm") and q["orm"] not in settings.DATABASES:
        errors.append(
            checks.Error(
                f'Q_CLUSTER["orm"] is "{q["orm"]}", which is not a key of DATABASES.',
                hint=f'Use a database alias, e.g. "orm": "default"; DATABASES has: {", ".join(settings.DATABASES)}.',
                id="integrations.E004",
            )
        )
    retry, timeout = q.get("retry", 60), q.get("timeout")
    if any(key in brokers for key in RETRYING_BROKERS):
        if timeout is not None and retry <= timeout:
            errors.append(
                checks.Error(
                    f"Q_CLUSTER retry ({retry}) must exceed timeout ({timeout}): the broker would hand a task "
                    "that is still running to a second worker.",
                    hint=f'Set "retry" above "timeout", e.g. "timeout": {timeout}, "retry": {timeout + 100}.',
                    id="integrations.E002",
                )
            )
        elif timeout is None:
            errors.append(
                checks.Warning(
                    f"Q_CLUSTER sets no timeout: a task still running after retry ({retry} s) is handed to a second "
                    "worker (a large run takes minutes).",
                    hint='Set both, retry above timeout, e.g. "timeout": 1800, "retry": 1900.',
                    id="integrations.W001",
                )
            )
    return errors


@checks.register()
def task_paths(app_configs, **kwargs):
    """Every task the app enqueues or schedules (queue.Task) names a function django-q2 can import."""
    from .queue import unresolved_tasks

    return [
        checks.Error(
            f'The task "{name}" does not resolve to a function: a worker would fail every such task.',
            hint="Fix its path in integrations.queue.Task, or define the task in integrations/tasks.py.",
            id="integrations.E005",
        )
        for name in unresolved_tasks()
    ]


@checks.register()
def apply_work_mem(app_configs, **kwargs):
    """INTEGRATIONS_APPLY_WORK_MEM is a PostgreSQL memory size (or empty)."""
    from .conf import conf
    from .ingest.apply import WORK_MEM

    value = conf.APPLY_WORK_MEM
    if not value or WORK_MEM.match(value):
        return []
    return [
        checks.Error(
            f"INTEGRATIONS_APPLY_WORK_MEM = {value!r} is not a PostgreSQL memory size: the apply keeps the "
            "server's work_mem.",
            hint='A number with an optional unit, e.g. "128MB" or "1GB"; empty keeps the server\'s setting.',
            id="integrations.E006",
        )
    ]
