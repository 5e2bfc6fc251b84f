"""Small pieces shared by the admin pages: the field templates, badges, progress bars, timings,
the reviewer group, and the base of the forms that save through the services."""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ..exceptions import IntegrationsError
from ..models import (
    ApiKey,
    Customer,
    Integration,
    RecordError,
    RunChange,
    SyncBatch,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
)

REVIEWERS_GROUP = "Sync reviewers"
# the one stylesheet of these pages: a ModelAdmin's Media; the custom pages include
# integrations/admin/styles.html, which links it
ADMIN_CSS = {"all": ("integrations/admin.css",)}
REVIEW_PERMISSION = "review_syncrun"  # declared in SyncRun.Meta.permissions
REVIEW_PERM = f"integrations.{REVIEW_PERMISSION}"


def render_field(name: str, **context):
    """The HTML of a column or a read-only field, drawn by its template
    (integrations/admin/fields/<name>.html): the code picks the values, the template the markup,
    admin.css the looks."""
    return mark_safe(render_to_string(f"integrations/admin/fields/{name}.html", context).strip())


def status_badge(status: str):
    """A coloured pill of a run's (or a webhook delivery's) status."""
    return render_field("status_badge", status=status, label=status.replace("_", " "))


def number(value) -> str:
    """A count with thousands separators (200,000), whatever the locale settings."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def run_phase(run: SyncRun) -> str:
    """Where a run is, in words: what a person watching the list wants to know."""
    total, done = run.batches_total, run.batches_done
    if run.status == SyncRun.Status.RECEIVING:
        return f"receiving: {number(total)} batch{'es' if total != 1 else ''} so far"
    if run.status == SyncRun.Status.QUEUED:
        return "queued: waiting for a worker"
    if run.status == SyncRun.Status.PROCESSING:
        if run.reviewed_at:
            return "applying (approved)"
        if not total:
            return "splitting the file"
        if done < total:
            return f"validating {number(done)} of {number(total)} batches"
        return "applying"
    if run.status == SyncRun.Status.NEEDS_REVIEW:
        return "waiting for review"
    return run.get_status_display().lower()


def progress_bar(run: SyncRun):
    """A <progress> bar (an indeterminate one while the file is split or the rows are applied)
    with the phase written under it."""
    total, done = run.batches_total, run.batches_done
    if run.is_live and (not total or done >= total):
        bar = "indeterminate"
    else:
        bar = "count" if total else ""
    return render_field("progress", bar=bar, status=run.status, total=total, done=done, phase=run_phase(run))


def timestamp(value):
    """Local date and time to the second, the ISO form in the tooltip."""
    if value is None:
        return "–"
    at = timezone.localtime(value)
    return format_html('<span class="nowrap" title="{}">{}</span>', at.isoformat(), at.strftime("%Y-%m-%d %H:%M:%S"))


def run_timings(run: SyncRun, validated_until=None, now=None) -> tuple:
    """(time spent processing, time spent waiting for a person's review) of a run, either None
    when unknown. A held run's `finished_at` is when it was held until it is reviewed, then the
    end of the apply; `reviewed_at` is the decision. The moment it was held is not stored, so
    the end of the last batch's validation (`validated_until`) stands for it: the plan between
    the two takes a moment, counted as waiting."""
    now = now or timezone.now()
    if not run.started_at:
        return None, None
    if run.status == SyncRun.Status.NEEDS_REVIEW:
        held = run.finished_at or now
        return held - run.started_at, now - held
    end = run.finished_at or (now if run.status == SyncRun.Status.PROCESSING else None)
    if end is None:
        return None, None
    if run.reviewed_at:
        held = min(validated_until or run.reviewed_at, run.reviewed_at)
        waited = run.reviewed_at - held
        return (end - run.started_at) - waited, waited
    return end - run.started_at, None


def format_duration(delta) -> str:
    if delta is None:
        return "–"
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def pretty_json(value):
    return render_field("json", text=json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


class ReadOnlyMixin:
    """What the engine writes, staff only read: no add, no edit, no delete (admins and inlines)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class IntegrationListFilter(admin.RelatedFieldListFilter):
    """By integration, labelled customer/slug in one query (the stock filter asks per integration)."""

    def field_choices(self, field, request, model_admin):
        return [
            (i.pk, str(i)) for i in Integration.objects.select_related("customer").order_by("customer__slug", "slug")
        ]


# --- permissions ------------------------------------------------------------------------------

# models whose pages the reviewers may view
_VIEWABLE = (Customer, ApiKey, Integration, SyncRun, SyncBatch, RecordError, RunChange, WebhookDelivery, WebhookAttempt)


def ensure_reviewer_group(using=DEFAULT_DB_ALIAS, **kwargs) -> Group:
    """The "Sync reviewers" staff group (docs/SECURITY.md): view everything of the app, review runs
    (SyncRun's Meta.permissions), change nothing. Idempotent; runs after every migrate (connected to
    post_migrate in admin/__init__.py) and from the tests. It only gathers permissions that the models
    declare; it makes sure they exist first, as it may run before Django's own post_migrate handler."""
    create_permissions(apps.get_app_config("integrations"), verbosity=0, using=using)
    codenames = [REVIEW_PERMISSION] + [f"view_{model._meta.model_name}" for model in _VIEWABLE]
    perms = Permission.objects.using(using).filter(content_type__app_label="integrations", codename__in=codenames)
    group, _ = Group.objects.using(using).get_or_create(name=REVIEWERS_GROUP)
    group.permissions.add(*perms)
    return group


def can_review(request) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm(REVIEW_PERM)


# --- forms that save through the services ----------------------------------------------------


class ServiceCheckedForm(forms.ModelForm):
    """A model form whose instance, once the fields are clean, passes the service's own checks
    (`check`: services.customer_check or integration_check); the model admin then saves it through
    the service (`save_model`). The service's error is shown beside the setting it names."""

    check: Callable[[Any], None] | None = None

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return  # the instance lacks the fields that failed: their errors say enough
        try:
            self.check(self.instance)
        except IntegrationsError as exc:
            field = next((name for name in exc.details if name in self.fields), None)
            self.add_error(field, exc.message)


def adopt(obj, saved) -> None:
    """The admin goes on with the object its form built (the inlines, the history entry and the
    redirect use it): give it the row the service created."""
    vars(obj).update(vars(saved))
