from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        autodiscover_modules("sync_targets")
        from . import checks  # noqa: F401  (registers system checks)
        from .schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)
