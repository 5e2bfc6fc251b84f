"""Record errors (filter by run, integration, code; search by key; the raw record as indented JSON)
and webhook deliveries with every attempt. Both read-only."""

import uuid

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ..ingest.journal import changed_fields
from ..models import RecordError, RunChange, SyncRun, WebhookAttempt, WebhookDelivery
from .common import ADMIN_CSS, IntegrationListFilter, ReadOnlyMixin, pretty_json, render_field, status_badge


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    class Media:
        css = ADMIN_CSS


class RunFilter(admin.SimpleListFilter):
    """By run: the run linked from a run page (?run=<id>), or one of the latest runs with errors."""

    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        choices = []
        value = self.value()
        if value:
            try:
                choices.append((value, f"{str(uuid.UUID(value))[:8]} (selected)"))
            except ValueError:
                pass
        recent = (
            SyncRun.objects.filter(failed__gt=0).select_related("integration__customer").order_by("-created_at")[:10]
        )
        for run in recent:
            if str(run.pk) != value:
                choices.append((str(run.pk), f"{str(run.pk)[:8]} {run.integration} ({run.failed})"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(run_id=uuid.UUID(value))
        except ValueError:
            return queryset.none()


class ChangeRunFilter(RunFilter):
    """By run: the run linked from a run page (?run=<id>), or one of the latest runs that changed rows."""

    def lookups(self, request, model_admin):
        value = self.value()
        choices = []
        if value:
            try:
                choices.append((value, f"{str(uuid.UUID(value))[:8]} (selected)"))
            except ValueError:
                pass
        recent = (
            SyncRun.objects.filter(Q(created__gt=0) | Q(updated__gt=0) | Q(deleted__gt=0))
            .select_related("integration__customer")
            .order_by("-created_at")[:10]
        )
        choices += [(str(r.pk), f"{str(r.pk)[:8]} {r.integration}") for r in recent if str(r.pk) != value]
        return choices


@admin.register(RunChange)
class RunChangeAdmin(ReadOnlyAdmin):
    """A run's change journal (SPEC 13): filter by run and operation, search by key."""

    list_display = ("key", "op", "changed", "conflict", "run_link")
    list_filter = (ChangeRunFilter, "op", "conflict")
    search_fields = ("=key",)
    search_help_text = "The row's key (exact)."
    list_select_related = ("run__integration__customer",)
    list_per_page = 100
    fields = ("run_link", "op", "key", "conflict", "before_json", "after_json")
    readonly_fields = fields

    @admin.display(description="changed fields")
    def changed(self, change):
        before, after = changed_fields(change.before, change.after)
        if change.op != RunChange.Op.UPDATED:
            return "–"
        return format_html_join(", ", "{}: {} → {}", ((n, before.get(n), after[n]) for n in after))

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, change):
        url = reverse("admin:integrations_syncrun_change", args=[change.run_id])
        return format_html('<a href="{}" title="{}" class="run-id">{}</a>', url, change.run_id, str(change.run_id)[:8])

    @admin.display(description="before")
    def before_json(self, change):
        return pretty_json(change.before)

    @admin.display(description="after")
    def after_json(self, change):
        if change.digest is not None and change.after is None:  # a created row: read from the table
            from ..ingest.journal import fill_created
            from ..targets import get_target

            integration = change.run.integration
            fill_created(get_target(integration.target), integration.customer_id, [change])
            if change.after is None:
                return "the row as the run created it is gone (changed or deleted since)"
        return pretty_json(change.after)


@admin.register(RecordError)
class RecordErrorAdmin(ReadOnlyAdmin):
    list_display = ("key_or_dash", "code", "short_message", "run_link", "integration", "seq", "index")
    list_filter = (RunFilter, "code", ("run__integration", IntegrationListFilter), "run__integration__customer")
    search_fields = ("=key",)
    search_help_text = "The record's key (exact)."
    list_select_related = ("run__integration__customer",)
    list_per_page = 100
    fields = ("run_link", "integration", "seq", "index", "key", "code", "message", "fields_json", "raw_record")
    readonly_fields = fields

    @admin.display(description="key", ordering="key")
    def key_or_dash(self, error):
        return error.key if error.key is not None else "(no key)"

    @admin.display(description="message")
    def short_message(self, error):
        return error.message if len(error.message) <= 120 else error.message[:117] + "…"

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, error):
        url = reverse("admin:integrations_syncrun_change", args=[error.run_id])
        return format_html('<a href="{}" title="{}" class="run-id">{}</a>', url, error.run_id, str(error.run_id)[:8])

    @admin.display(description="integration", ordering="run__integration__slug")
    def integration(self, error):
        return str(error.run.integration)

    @admin.display(description="fields")
    def fields_json(self, error):
        if not error.fields:
            return "–"
        return render_field(
            "error_fields",
            fields=[(name, "; ".join(msgs) if isinstance(msgs, list) else msgs) for name, msgs in error.fields.items()],
        )

    @admin.display(description="raw record")
    def raw_record(self, error):
        return pretty_json(error.record)


class AttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "next_attempt_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event", "delivery_status", "run_link", "url", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event", ("run__integration", IntegrationListFilter))
    search_fields = ("webhook_id", "url")
    list_select_related = ("run__integration",)
    fields = (
        "run_link",
        "event",
        "delivery_status",
        "webhook_id",
        "event_timestamp",
        "url",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
        "payload_json",
    )
    readonly_fields = fields
    inlines = [AttemptInline]

    @admin.display(description="status", ordering="status")
    def delivery_status(self, delivery):
        return status_badge(delivery.status)

    @admin.display(description="run")
    def run_link(self, delivery):
        url = reverse("admin:integrations_syncrun_change", args=[delivery.run_id])
        return format_html('<a href="{}">{}</a>', url, str(delivery.run_id)[:8])

    @admin.display(description="payload")
    def payload_json(self, delivery):
        return pretty_json(delivery.payload)
