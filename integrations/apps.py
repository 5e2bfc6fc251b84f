from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


def sqlite_immediate_transactions(sender, connection, **kwargs):
    """On SQLite, transactions BEGIN IMMEDIATE unless the host chose a mode (OPTIONS["transaction_mode"]).

    The engine serialises work with select_for_update, which SQLite ignores; in SQLite's default DEFERRED
    mode two transactions that read and then write (two workers starting an integration's next run)
    deadlock and one fails at once with "database is locked", without waiting for the busy timeout.
    IMMEDIATE takes the write lock at BEGIN, so writers queue on the timeout instead (the demo sets it too)."""
    if connection.vendor == "sqlite" and connection.transaction_mode is None:
        connection.transaction_mode = "IMMEDIATE"


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def import_models(self):
        from .checks import INSTALLED_APPS_HINT, missing_apps, missing_apps_message

        # models.py extends rest_framework_api_key's models, whose import without that app fails with a
        # RuntimeError naming neither the app nor the fix; every other missing app is a system check.
        missing = missing_apps()
        if "rest_framework_api_key" in missing:
            raise ImproperlyConfigured(f"{missing_apps_message(missing)} Fix: {INSTALLED_APPS_HINT}")
        super().import_models()

    def ready(self):
        autodiscover_modules("sync_targets")
        from . import checks  # noqa: F401  (registers system checks)
        from .schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
        connection_created.connect(sqlite_immediate_transactions, dispatch_uid="integrations_sqlite_immediate")
        if apps.is_installed("django_q"):
            from django.db import reset_queries
            from django_q.signals import pre_execute

            # With DEBUG on, Django logs every query until reset_queries(), which it calls per request;
            # a worker serves no requests, so its log would keep growing across tasks: reset per task.
            pre_execute.connect(reset_queries, dispatch_uid="integrations_reset_queries")
