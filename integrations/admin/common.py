"""Small pieces shared by the admin pages: badges, progress bars, the reviewer group, the errors CSV."""

import json

from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils.html import format_html

from ..models import ApiKey, Customer, Integration, RecordError, SyncBatch, SyncRun, WebhookAttempt, WebhookDelivery

REVIEWERS_GROUP = "Sync reviewers"
REVIEW_PERMISSION = "review_syncrun"
REVIEW_PERM = f"integrations.{REVIEW_PERMISSION}"

STATUS_COLOURS = {
    SyncRun.Status.RECEIVING: "#6c757d",
    SyncRun.Status.QUEUED: "#8a6d3b",
    SyncRun.Status.PROCESSING: "#1f6fb2",
    SyncRun.Status.NEEDS_REVIEW: "#d97706",
    SyncRun.Status.SUCCEEDED: "#1e8e3e",
    SyncRun.Status.PARTIAL: "#7cb342",
    SyncRun.Status.FAILED: "#c62828",
    SyncRun.Status.CANCELLED: "#9e9e9e",
}
# statuses in which a run's page follows its progress by reloading itself
LIVE_STATES = (SyncRun.Status.QUEUED, SyncRun.Status.PROCESSING)


DELIVERY_COLOURS = {"delivered": "#1e8e3e", "pending": "#d97706", "failed": "#c62828"}


def status_badge(status: str, colours=STATUS_COLOURS):
    colour = colours.get(status, "#6c757d")
    label = status.replace("_", " ")
    return format_html(
        '<span class="run-status run-status-{}" style="display:inline-block;padding:1px 8px;border-radius:9px;'
        'background:{};color:#fff;font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        status, colour, label,
    )


def progress_bar(run: SyncRun):
    total, done = run.batches_total, run.batches_done
    if run.status == SyncRun.Status.PROCESSING and not total:
        return format_html('<span class="run-progress">splitting the file…</span>')
    if not total:
        return "–"
    share = min(100, round(100 * done / total))
    colour = STATUS_COLOURS.get(run.status, "#1f6fb2")
    return format_html(
        '<span class="run-progress" title="{} of {} batches validated" style="display:inline-flex;align-items:center;'
        'gap:6px"><span style="display:inline-block;width:44px;height:8px;background:#e0e0e0;border-radius:4px;'
        'overflow:hidden"><span style="display:block;height:8px;width:{}%;background:{}"></span></span>'
        '<span style="font-size:11px">{}/{}</span></span>',
        done, total, share, colour, done, total,
    )


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
    return format_html(
        '<pre class="raw-json" style="white-space:pre-wrap;margin:0;max-height:30em;overflow:auto">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False),
    )


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
        return [(i.pk, str(i)) for i in Integration.objects.select_related("customer").order_by("customer__slug", "slug")]


# --- permissions ------------------------------------------------------------------------------

# models whose pages the reviewers may view
_VIEWABLE = (Customer, ApiKey, Integration, SyncRun, SyncBatch, RecordError, WebhookDelivery, WebhookAttempt)


def ensure_reviewer_group(**kwargs) -> Group:
    """The "Sync reviewers" staff group: view everything of the app, review runs, change nothing.
    Idempotent; runs after every migrate (post_migrate) and from `setup_staff_groups`."""
    run_type = ContentType.objects.get_for_model(SyncRun)
    review, _ = Permission.objects.get_or_create(
        content_type=run_type, codename=REVIEW_PERMISSION,
        defaults={"name": "Can review sync runs (approve, reject, cancel, retry, download errors)"},
    )
    perms = [review]
    for model in _VIEWABLE:
        ct = ContentType.objects.get_for_model(model)
        perm, _ = Permission.objects.get_or_create(
            content_type=ct, codename=f"view_{model._meta.model_name}",
            defaults={"name": f"Can view {model._meta.verbose_name}"},
        )
        perms.append(perm)
    group, _ = Group.objects.get_or_create(name=REVIEWERS_GROUP)
    group.permissions.add(*perms)
    return group


def can_review(request) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm(REVIEW_PERM)


