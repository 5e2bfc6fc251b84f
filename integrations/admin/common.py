"""Small pieces shared by the admin pages: badges, progress bars, the reviewer group, the errors CSV."""

import json

from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.html import format_html

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
# the one stylesheet of these pages (a ModelAdmin's Media; the custom pages link it themselves)
ADMIN_CSS = {"all": ("integrations/admin.css",)}
REVIEW_PERMISSION = "review_syncrun"
REVIEW_PERM = f"integrations.{REVIEW_PERMISSION}"

def status_badge(status: str):
    """A coloured pill of a run's (or a webhook delivery's) status; its colour comes from the
    stylesheet (class run-status-<status>)."""
    return format_html('<span class="run-status run-status-{}">{}</span>', status, status.replace("_", " "))


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
    phase = run_phase(run)
    if run.is_live and (not total or done >= total):
        bar = format_html('<progress class="run-bar run-bar-{}" aria-label="{}"></progress>', run.status, phase)
    elif total:
        bar = format_html('<progress class="run-bar run-bar-{}" max="{}" value="{}" aria-label="{}"></progress>',
                          run.status, total, done, phase)
    else:
        return format_html('<span class="run-progress"><span class="run-phase">{}</span></span>', phase)
    return format_html('<span class="run-progress" title="{} of {} batches validated">{}'
                       '<span class="run-phase">{}</span></span>', number(done), number(total), bar, phase)


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
    return format_html('<pre class="raw-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


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
_VIEWABLE = (Customer, ApiKey, Integration, SyncRun, SyncBatch, RecordError, RunChange, WebhookDelivery, WebhookAttempt)


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


