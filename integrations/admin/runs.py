"""Sync runs: read-only, with the staff decisions as actions that call the same services as the API:
approve or reject a held run (after a confirmation naming what would be deleted), cancel, retry,
and download the errors as CSV."""

import re
import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .. import services
from ..errors_csv import error_csv_rows
from ..exceptions import IntegrationsError
from ..models import RecordError, SyncBatch, SyncRun, WebhookDelivery
from ..selectors import held_run_deletions, run_errors
from .common import (
    DELIVERY_COLOURS,
    LIVE_STATES,
    IntegrationListFilter,
    ReadOnlyMixin,
    can_review,
    format_duration,
    progress_bar,
    status_badge,
)

Status = SyncRun.Status
CANCELLABLE = (Status.RECEIVING, Status.QUEUED, Status.PROCESSING, Status.NEEDS_REVIEW)
RETRYABLE = (Status.FAILED, Status.CANCELLED)
FIRST_ERRORS = 10


def errors_url(run_id) -> str:
    return reverse("admin:integrations_recorderror_changelist") + f"?run={run_id}"


def counts_summary(run: SyncRun):
    parts = [
        ("received", run.received, "rcv"), ("created", run.created, "new"), ("updated", run.updated, "upd"),
        ("unchanged", run.unchanged, "same"), ("deleted", run.deleted, "del"), ("failed", run.failed, "fail"),
    ]
    # received always; the others only when not zero, so the column stays narrow
    shown = [(n, v, short) for n, v, short in parts if v or n == "received"]
    return format_html(
        '<span class="run-counts" style="font-size:11px;display:inline-block;min-width:130px;max-width:190px">{}</span>',
        format_html_join(" · ", '<span class="count-{}" title="{}" style="white-space:nowrap;{}">{} {}</span>',
                         ((n, n, "color:#c62828;font-weight:600" if n == "failed" else "", v, short)
                          for n, v, short in shown)),
    )


class BatchInline(ReadOnlyMixin, admin.TabularInline):
    model = SyncBatch
    fields = ("seq", "received", "deletes", "valid", "invalid", "size", "content_type", "content_encoding",
              "created_at", "validated_at", "payload_purged_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "batches"


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookDelivery
    fields = ("event", "delivery_status", "url", "attempts", "last_status_code", "last_error", "next_attempt_at",
              "attempt_log_summary", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "webhook deliveries"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempt_log")

    @admin.display(description="status")
    def delivery_status(self, delivery):
        return status_badge(delivery.status, DELIVERY_COLOURS)

    @admin.display(description="attempts log")
    def attempt_log_summary(self, delivery):
        attempts = list(delivery.attempt_log.all())
        if not attempts:
            return "–"
        return format_html_join(
            mark_safe("<br>"), "#{} {} → {} {}",
            ((a.number, a.started_at.strftime("%Y-%m-%d %H:%M:%S"), a.status_code or "no answer",
              f"({a.error[:80]})" if a.error else "") for a in attempts),
        )


class RunSearchMixin:
    search_help_text = "A run id, or its first characters (as listed); or an integration or customer slug."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        q = Q(integration__slug__icontains=term) | Q(integration__customer__slug__icontains=term)
        if re.fullmatch(r"[0-9a-fA-F]{4,32}", term):
            q |= Q(id__startswith=term.lower())
        return queryset.filter(q), False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyMixin, RunSearchMixin, admin.ModelAdmin):
    list_display = ("short_id", "status_badge", "customer", "integration_link", "mode_label", "counts",
                    "duration", "progress", "created_on")
    list_display_links = ("short_id",)
    list_filter = ("status", "integration__customer", ("integration", IntegrationListFilter), "mode", "dry_run", "source", "created_at")
    list_select_related = ("integration__customer",)
    list_per_page = 100
    search_fields = ("id",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ["approve_runs", "reject_runs", "cancel_runs", "retry_runs", "download_errors"]
    inlines = [BatchInline, DeliveryInline]
    fieldsets = [
        ("Run", {"fields": ["status_badge", "integration_link", "customer", "mode_label"]}),
        ("Counts", {"fields": ["counts_table", "progress", "message"]}),
        ("First errors", {"fields": ["first_errors"]}),
        ("Timings", {"fields": ["created_at", "completed_at", "started_at", "finished_at", "duration",
                                "heartbeat_at"]}),
        ("Origin and review", {"fields": ["source", "upload_filename", "retry_of_link", "retried_as",
                                          "reviewed_by", "reviewed_at", "attempts", "last_error",
                                          "error_detail"]}),
    ]
    readonly_fields = ["status_badge", "integration_link", "customer", "mode_label", "source",
                       "upload_filename", "retry_of_link", "retried_as", "counts_table", "progress", "created_at",
                       "completed_at", "started_at", "finished_at", "duration", "heartbeat_at", "attempts",
                       "message", "last_error", "error_detail", "reviewed_by", "reviewed_at", "first_errors"]

    def has_review_permission(self, request):
        return can_review(request)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("integration__customer", "retry_of")

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="run", ordering="created_at")
    def short_id(self, run):
        return format_html('<span title="{}" style="font-family:monospace">{}</span>', run.pk, str(run.pk)[:8])

    @admin.display(description="status", ordering="status")
    def status_badge(self, run):
        return status_badge(run.status)

    @admin.display(description="customer", ordering="integration__customer__slug")
    def customer(self, run):
        return run.integration.customer.slug

    @admin.display(description="integration", ordering="integration__slug")
    def integration_link(self, run):
        url = reverse("admin:integrations_integration_change", args=[run.integration_id])
        return format_html('<a href="{}">{}</a>', url, run.integration.slug)

    @admin.display(description="mode", ordering="mode")
    def mode_label(self, run):
        if run.dry_run:
            return format_html('{} <span style="color:#8a6d3b;font-size:11px">(dry run)</span>', run.mode)
        return run.mode

    @admin.display(description="created at", ordering="created_at")
    def created_on(self, run):
        at = timezone.localtime(run.created_at)
        return format_html('<span style="white-space:nowrap" title="{}">{}</span>', at.isoformat(), at.strftime("%d %b %H:%M"))

    @admin.display(description="counts")
    def counts(self, run):
        return counts_summary(run)

    @admin.display(description="duration")
    def duration(self, run):
        if run.duration is not None:
            return format_html('<span style="white-space:nowrap">{}</span>', format_duration(run.duration))
        if run.status == Status.PROCESSING and run.started_at:
            return format_html('<span title="still running" style="white-space:nowrap">{}…</span>', format_duration(timezone.now() - run.started_at))
        return "–"

    @admin.display(description="progress")
    def progress(self, run):
        return progress_bar(run)

    # --- run page fields ----------------------------------------------------------------------
    @admin.display(description="retry of")
    def retry_of_link(self, run):
        if not run.retry_of_id:
            return "–"
        url = reverse("admin:integrations_syncrun_change", args=[run.retry_of_id])
        return format_html('<a href="{}">{}</a>', url, run.retry_of_id)

    @admin.display(description="retried as")
    def retried_as(self, run):
        retries = list(run.retries.order_by("created_at").values_list("pk", flat=True))
        if not retries:
            return "–"
        return format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("admin:integrations_syncrun_change", args=[pk]), str(pk)[:8]) for pk in retries))

    @admin.display(description="counts")
    def counts_table(self, run):
        cells = format_html_join("", '<td class="count-{}" style="font-size:16px;font-weight:600;padding:4px 14px">{}</td>',
                                 ((name, value) for name, value in run.counts.items()))
        heads = format_html_join("", '<th style="padding:4px 14px">{}</th>', ((name,) for name in run.counts))
        return format_html('<table class="run-counts-table"><tr>{}</tr><tr>{}</tr></table>', heads, cells)

    @admin.display(description="first errors")
    def first_errors(self, run):
        errors = list(run_errors(run)[:FIRST_ERRORS])
        if not errors:
            return "none"
        rows = format_html_join(
            "", '<tr><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td></tr>',
            ((e.seq, e.index, e.key if e.key is not None else "–",
              reverse("admin:integrations_recorderror_change", args=[e.pk]), e.code, e.message[:200])
             for e in errors),
        )
        csv_url = reverse("admin:integrations_syncrun_errors_csv", args=[run.pk])
        total = run.failed or len(errors)
        return format_html(
            '<table class="first-errors"><thead><tr><th>batch</th><th>index</th><th>key</th><th>code</th>'
            '<th>message</th></tr></thead><tbody>{}</tbody></table>'
            '<p><a class="all-errors" href="{}">All {} error{} →</a> · <a href="{}">Download as CSV</a></p>',
            rows, errors_url(run.pk), total, "" if total == 1 else "s", csv_url,
        )

    # --- the run page -------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if run is not None:
            extra["run_live"] = run.status in LIVE_STATES
            extra["run_tools"] = self._tools(request, run)
        return super().change_view(request, object_id, form_url, extra)

    def _tools(self, request, run):
        tools = []
        has_errors = bool(run.failed) or run.errors.exists()
        if has_errors:
            tools.append(("All errors", errors_url(run.pk)))
        if not can_review(request):
            return tools
        if run.status == Status.NEEDS_REVIEW and not run.dry_run:
            tools.append(("Review (approve / reject)…", reverse("admin:integrations_syncrun_review", args=[run.pk])))
        if run.status in CANCELLABLE:
            tools.append(("Cancel…", reverse("admin:integrations_syncrun_cancel", args=[run.pk])))
        if run.status in RETRYABLE:
            tools.append(("Retry…", reverse("admin:integrations_syncrun_retry", args=[run.pk])))
        if has_errors:
            tools.append(("Download errors CSV", reverse("admin:integrations_syncrun_errors_csv", args=[run.pk])))
        return tools

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/review/", view(self.review_view), name="integrations_syncrun_review"),
            path("<path:object_id>/cancel/", view(self.cancel_view), name="integrations_syncrun_cancel"),
            path("<path:object_id>/retry/", view(self.retry_view), name="integrations_syncrun_retry"),
            path("<path:object_id>/errors.csv", view(self.errors_csv_view), name="integrations_syncrun_errors_csv"),
        ] + super().get_urls()

    def _run_for(self, request, object_id) -> SyncRun:
        if not can_review(request):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("no such run")
        return run

    def _run_page(self, run):
        return HttpResponseRedirect(reverse("admin:integrations_syncrun_change", args=[run.pk]))

    def review_view(self, request, object_id):
        run = self._run_for(request, object_id)
        if request.method == "POST":
            decision = request.POST.get("decision")
            if decision not in ("approve", "reject"):
                messages.error(request, "choose approve or reject")
            else:
                self._review(request, [run], approve=decision == "approve")
            return self._run_page(run)
        return self._confirmation(request, [run], verb="review")

    def cancel_view(self, request, object_id):
        run = self._run_for(request, object_id)
        if request.method == "POST":
            self._cancel(request, [run])
            return self._run_page(run)
        return self._confirmation(request, [run], verb="cancel")

    def retry_view(self, request, object_id):
        run = self._run_for(request, object_id)
        if request.method == "POST":
            new = self._retry(request, [run])
            return self._run_page(new[0] if new else run)
        return self._confirmation(request, [run], verb="retry")

    def errors_csv_view(self, request, object_id):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        run = self._run_for(request, object_id)
        return self._csv_response(run_errors(run), f"errors-{run.pk}.csv", integration=run.integration)

    # --- the decisions, shared by the run page and the changelist actions ---------------------
    def _confirmation(self, request, runs, *, verb, action=None):
        items = []
        for run in runs:
            item = {"run": run, "url": reverse("admin:integrations_syncrun_change", args=[run.pk]),
                    "badge": status_badge(run.status)}
            if verb in ("review", "approve", "reject") and run.status == Status.NEEDS_REVIEW:
                item["would_delete"], item["sample"] = held_run_deletions(run, limit=20)
                item["more"] = max(0, item["would_delete"] - len(item["sample"]))
            items.append(item)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": {"review": "Review a held run", "approve": "Approve held runs", "reject": "Reject held runs",
                      "cancel": "Cancel runs", "retry": "Retry runs"}[verb],
            "verb": verb,
            "items": items,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": [str(r.pk) for r in runs],
        }
        return TemplateResponse(request, "integrations/admin/run_confirm.html", context)

    def _review(self, request, runs, *, approve):
        done = 0
        for run in runs:
            try:
                services.run_review(run=run, approve=approve, user=request.user.get_username())
                done += 1
            except IntegrationsError as exc:
                messages.error(request, f"run {run.pk}: {exc.message}")
        if done:
            what = "approved: applying now" if approve else "rejected: cancelled, nothing applied"
            messages.success(request, f"{done} run(s) {what}.")

    def _cancel(self, request, runs):
        done = 0
        for run in runs:
            try:
                services.run_cancel(run=run, reason=f"cancelled by {request.user.get_username()} in the admin")
                done += 1
            except IntegrationsError as exc:
                messages.error(request, f"run {run.pk}: {exc.message}")
        if done:
            messages.success(request, f"{done} run(s) cancelled.")

    def _retry(self, request, runs):
        new_runs = []
        for run in runs:
            try:
                new_runs.append(services.run_retry(run=run, source=SyncRun.Source.ADMIN))
            except IntegrationsError as exc:
                messages.error(request, f"run {run.pk}: {exc.message}")
        for new in new_runs:
            messages.success(request, f"run {new.retry_of_id} retried as run {new.pk}.")
        return new_runs

    def _csv_response(self, errors, filename, *, with_run=False, integration=None):
        rows = error_csv_rows(errors, with_run=with_run, integration=integration)
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    # --- changelist actions -------------------------------------------------------------------
    @admin.action(description="Approve selected held runs…", permissions=["review"])
    def approve_runs(self, request, queryset):
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected held runs…", permissions=["review"])
    def reject_runs(self, request, queryset):
        return self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve):
        runs = list(queryset.filter(status=Status.NEEDS_REVIEW).select_related("integration__customer"))
        if approve:
            runs = [r for r in runs if not r.dry_run]
        if not runs:
            messages.warning(request, "none of the selected runs is held for review" +
                             (" (held dry runs cannot be approved)" if approve else ""))
            return None
        if request.POST.get("post") == "yes":
            self._review(request, runs, approve=approve)
            return None
        return self._confirmation(request, runs, verb="approve" if approve else "reject",
                                  action="approve_runs" if approve else "reject_runs")

    @admin.action(description="Cancel selected runs", permissions=["review"])
    def cancel_runs(self, request, queryset):
        runs = list(queryset.filter(status__in=CANCELLABLE))
        if not runs:
            messages.warning(request, "none of the selected runs can be cancelled (already applied or ended)")
            return None
        self._cancel(request, runs)
        return None

    @admin.action(description="Retry selected failed runs", permissions=["review"])
    def retry_runs(self, request, queryset):
        runs = list(queryset.filter(status__in=RETRYABLE).select_related("integration"))
        if not runs:
            messages.warning(request, "none of the selected runs failed or was cancelled")
            return None
        self._retry(request, runs)
        return None

    @admin.action(description="Download errors of selected runs as CSV", permissions=["review"])
    def download_errors(self, request, queryset):
        run_ids = list(queryset.values_list("pk", flat=True))
        errors = RecordError.objects.filter(run_id__in=run_ids).order_by("run_id", "seq", "index", "id")
        name = f"errors-{run_ids[0]}.csv" if len(run_ids) == 1 else f"errors-{len(run_ids)}-runs.csv"
        return self._csv_response(errors, name, with_run=len(run_ids) > 1)
