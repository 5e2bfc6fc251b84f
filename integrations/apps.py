from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

# How long a SQLite write waits for the one writer before "database is locked": longer than an apply
# of a large run holds the write lock (bench-e2e: a few seconds at 200,000 records), like the demo's.
SQLITE_BUSY_TIMEOUT_MS = 60_000


def sqlite_connection_defaults(sender, connection, **kwargs):
    """On SQLite, what the engine needs of each connection, where the host did not choose otherwise.

    - Transactions BEGIN IMMEDIATE unless the host chose a mode (OPTIONS["transaction_mode"]). The
      engine serialises work with select_for_update, which SQLite ignores; in SQLite's default
      DEFERRED mode two transactions that read and then write (two workers starting an
      integration's next run) deadlock and one fails at once with "database is locked", without
      waiting for the busy timeout. IMMEDIATE takes the write lock at BEGIN, so writers queue.
    - A busy timeout of 60 s unless the host set OPTIONS["timeout"]: a run's apply is one write
      transaction, and Python's default of 5 s would turn a batch post or a `complete` arriving
      during a longer apply into a 500 "database is locked".
    - WAL unless the host's init_command sets a journal_mode: in the default rollback journal a
      long write transaction blocks every reader (the admin, `GET runs/{id}/`) once it spills its
      cache; in WAL readers never wait for the writer. WAL is a property of the file, kept after."""
    if connection.vendor != "sqlite":
        return
    if connection.transaction_mode is None:
        connection.transaction_mode = "IMMEDIATE"
    options = connection.settings_dict.get("OPTIONS") or {}
    raw = connection.connection
    if "timeout" not in options:
        raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    if "journal_mode" not in str(options.get("init_command", "")).lower() and not connection.is_in_memory_db():
        try:
            raw.execute("PRAGMA journal_mode = WAL")
        except connection.Database.OperationalError:
            pass  # another connection holds the file in its own mode right now: the next one switches


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
        connection_created.connect(sqlite_connection_defaults, dispatch_uid="integrations_sqlite_defaults")
        if apps.is_installed("django_q"):
            from django.db import reset_queries
            from django_q.signals import pre_execute

            # With DEBUG on, Django logs every query until reset_queries(), which it calls per request;
            # a worker serves no requests, so its log would keep growing across tasks: reset per task.
            pre_execute.connect(reset_queries, dispatch_uid="integrations_reset_queries")
