"""The staff window (SPEC section 7) on the stock admin site. Every action calls the services the
API and the commands call; nothing here holds business logic."""

from django.apps import apps
from django.contrib import admin
from django.db.models.signals import post_migrate

from . import customers, dashboard, errors, integrations, runs  # noqa: F401  (registers the model admins)
from .common import REVIEWERS_GROUP, ensure_reviewer_group

__all__ = ["REVIEWERS_GROUP", "ensure_reviewer_group"]

post_migrate.connect(
    ensure_reviewer_group, sender=apps.get_app_config("integrations"), dispatch_uid="integrations_reviewer_group"
)

# The library's own concrete APIKey model is unused (our ApiKey belongs to a customer): hide it.
try:
    from rest_framework_api_key.models import APIKey as _LibraryAPIKey

    if admin.site.is_registered(_LibraryAPIKey):
        admin.site.unregister(_LibraryAPIKey)
except ImportError:  # pragma: no cover
    pass


def _with_dashboard(index):
    """The stock index with the sync dashboard in its context (the host keeps its own AdminSite;
    integrations/admin/index.html, which extends the host's admin/index.html, draws it)."""

    def view(request, extra_context=None):
        return index(request, extra_context={**dashboard.dashboard_context(request), **(extra_context or {})})

    return view


if not getattr(admin.site.index, "_sync_dashboard", False):
    admin.site.index = _with_dashboard(admin.site.index)
    admin.site.index._sync_dashboard = True
    # Our own template name, not an admin/index.html override: an app's override of admin/index.html
    # only wins when the app is listed before django.contrib.admin, and SPEC 12 appends it after.
    if admin.site.index_template is None:
        admin.site.index_template = "integrations/admin/index.html"
