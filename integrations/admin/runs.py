"""Sync runs: read-only, with the staff decisions as actions that call the same services as the API:
approve or reject a held run (after a confirmation naming what would be deleted), cancel, retry,
and download the errors as CSV."""

import csv
import io
import re
import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .. import services
from ..changes_csv import change_csv_rows
from ..errors_csv import cell, error_csv_rows
from ..exceptions import IntegrationsError
from ..models import RecordError, RunChange, SyncBatch, SyncRun, WebhookDelivery
from ..selectors import held_run_deletion_keys, held_run_deletions, run_changes, run_errors
from .common import (
    ADMIN_CSS,
    IntegrationListFilter,
    ReadOnlyMixin,
    can_review,
    format_duration,
    number,
    progress_bar,
    render_field,
    run_phase,
    run_timings,
    status_badge,
    timestamp,
)

Status = SyncRun.Status
FIRST_ERRORS = 10
SAMPLE_KEYS = 20


def errors_url(run_id) -> str:
    return reverse("admin:integrations_recorderror_changelist") + f"?run={run_id}"


def counts_summary(run: SyncRun):
    parts = [
        ("received", run.received, "rcv"),
        ("created", run.created, "new"),
        ("updated", run.updated, "upd"),
        ("unchanged", run.unchanged, "same"),
        ("deleted", run.deleted, "del"),
        ("failed", run.failed, "fail"),
    ]
    # received always; the others only when not zero, so the column stays narrow
    return render_field("counts_summary", counts=[(n, v, short) for n, v, short in parts if v or n == "received"])


class _Line:
    """One CSV line at a time, for a streamed response."""

    def __init__(self):
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue()


class BatchInline(ReadOnlyMixin, admin.TabularInline):
    model = SyncBatch
    fields = (
        "seq",
        "received",
        "deletes",
        "valid",
        "invalid",
        "size",
        "content_type",
        "content_encoding",
        "created_at",
        "validated_at",
        "payload_purged_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "batches"


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookDelivery
    fields = (
        "event",
        "delivery_status",
        "url",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "attempt_log_summary",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "webhook deliveries"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempt_log")

    @admin.display(description="status")
    def delivery_status(self, delivery):
        return status_badge(delivery.status)

    @admin.display(description="attempts log")
    def attempt_log_summary(self, delivery):
        attempts = list(delivery.attempt_log.all())
        if not attempts:
            return "–"
        return render_field(
            "attempt_log",
            attempts=[
                (
                    a.number,
                    a.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    a.status_code or "no answer",
                    f"({a.error[:80]})" if a.error else "",
                )
                for a in attempts
            ],
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
    class Media:
        css = ADMIN_CSS

    list_display = (
        "short_id",
        "status_badge",
        "integration_link",
        "mode_label",
        "counts",
        "duration",
        "progress",
        "created_on",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        "integration__customer",
        ("integration", IntegrationListFilter),
        "mode",
        "dry_run",
        "source",
        "created_at",
    )
    list_select_related = ("integration__customer",)
    list_per_page = 100
    search_fields = ("id",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ["approve_runs", "reject_runs", "cancel_runs", "retry_runs", "undo_run", "download_errors"]
    inlines = [BatchInline, DeliveryInline]
    fieldsets = [
        ("Run", {"fields": ["status_badge", "integration_link", "customer", "mode_label"]}),
        ("Counts", {"fields": ["counts_table", "progress", "message"]}),
        ("First errors", {"fields": ["first_errors"]}),
        ("Changes", {"fields": ["changes_summary", "undo_state"]}),
        (
            "Timings",
            {
                "fields": [
                    "created_at_s",
                    "completed_at_s",
                    "started_at_s",
                    "finished_at_s",
                    "duration",
                    "waited",
                    "heartbeat_at_s",
                ]
            },
        ),
        (
            "Origin and review",
            {
                "fields": [
                    "source",
                    "upload_filename",
                    "retry_of_link",
                    "retried_as",
                    "reviewed_by",
                    "reviewed_at_s",
                    "attempts",
                    "last_error",
                    "error_detail",
                ]
            },
        ),
    ]
    readonly_fields = [
        "status_badge",
        "integration_link",
        "customer",
        "mode_label",
        "source",
        "upload_filename",
        "retry_of_link",
        "retried_as",
        "counts_table",
        "progress",
        "created_at_s",
        "completed_at_s",
        "started_at_s",
        "finished_at_s",
        "duration",
        "waited",
        "heartbeat_at_s",
        "attempts",
        "message",
        "last_error",
        "error_detail",
        "reviewed_by",
        "reviewed_at_s",
        "first_errors",
        "changes_summary",
        "undo_state",
    ]

    def has_review_permission(self, request):
        return can_review(request)

    def get_queryset(self, request):
        # the end of validation stands for the moment a reviewed run was held (see run_timings);
        # a subquery, not a join and GROUP BY: the list's count and sort stay on the runs alone
        last_validated = (
            SyncBatch.objects.filter(run=OuterRef("pk"), validated_at__isnull=False)
            .order_by("-validated_at")
            .values("validated_at")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .select_related("integration__customer", "retry_of")
            .annotate(validated_until=Subquery(last_validated))
        )

    def get_changelist(self, request, **kwargs):
        """The list, noting whether any run shown is still moving (the page then reloads itself)."""
        from django.contrib.admin.views.main import ChangeList

        class RunChangeList(ChangeList):
            def get_results(self, request):
                super().get_results(request)
                self.has_active = any(run.is_live for run in self.result_list)

        return RunChangeList

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="run", ordering="created_at")
    def short_id(self, run):
        return format_html('<span title="{}" class="run-id">{}</span>', run.pk, str(run.pk)[:8])

    @admin.display(description="status", ordering="status")
    def status_badge(self, run):
        return status_badge(run.status)

    @admin.display(description="customer", ordering="integration__customer__slug")
    def customer(self, run):
        return run.integration.customer.slug

    @admin.display(description="integration", ordering="integration__customer__slug")
    def integration_link(self, run):
        url = reverse("admin:integrations_integration_change", args=[run.integration_id])
        return format_html(
            '<a href="{}" class="nowrap">{}/{}</a>', url, run.integration.customer.slug, run.integration.slug
        )

    @admin.display(description="mode", ordering="mode")
    def mode_label(self, run):
        if run.dry_run:
            return format_html('{} <span class="dry-run">(dry run)</span>', run.mode)
        return run.mode

    @admin.display(description="created at", ordering="created_at")
    def created_on(self, run):
        return timestamp(run.created_at)

    @admin.display(description="counts")
    def counts(self, run):
        return counts_summary(run)

    @admin.display(description="duration")
    def duration(self, run):
        """Processing time; the time a held run waited for a person is shown apart."""
        processing, waited = run_timings(run, getattr(run, "validated_until", None))
        if processing is None:
            return "–"
        text = format_duration(processing) + ("…" if run.status == Status.PROCESSING else "")
        return render_field("duration", processing=text, waited=None if waited is None else format_duration(waited))

    @admin.display(description="waiting for review")
    def waited(self, run):
        return format_duration(run_timings(run, getattr(run, "validated_until", None))[1])

    @admin.display(description="created at")
    def created_at_s(self, run):
        return timestamp(run.created_at)

    @admin.display(description="completed at")
    def completed_at_s(self, run):
        return timestamp(run.completed_at)

    @admin.display(description="started at")
    def started_at_s(self, run):
        return timestamp(run.started_at)

    @admin.display(description="finished at")
    def finished_at_s(self, run):
        return timestamp(run.finished_at)

    @admin.display(description="heartbeat at")
    def heartbeat_at_s(self, run):
        return timestamp(run.heartbeat_at)

    @admin.display(description="reviewed at")
    def reviewed_at_s(self, run):
        return timestamp(run.reviewed_at)

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
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:integrations_syncrun_change", args=[pk]), str(pk)[:8]) for pk in retries),
        )

    @admin.display(description="counts")
    def counts_table(self, run):
        return render_field("counts_table", counts=run.counts)

    @admin.display(description="first errors")
    def first_errors(self, run):
        errors = list(run_errors(run)[:FIRST_ERRORS])
        active = run.is_active
        if not errors:
            return render_field("first_errors", errors=errors, active=active, phase=active and run_phase(run))
        return render_field(
            "first_errors",
            errors=errors,
            active=active,
            total=run.failed or len(errors),
            errors_url=errors_url(run.pk),
            csv_url=reverse("admin:integrations_syncrun_errors_csv", args=[run.pk]),
        )

    @admin.display(description="changes")
    def changes_summary(self, run):
        """The journal's counts per operation, each a link to those changes (SPEC 13)."""
        if run.changes_purged_at:
            return format_html("the journal was purged on {} (retention)", timestamp(run.changes_purged_at))
        counts = dict(run.changes.values_list("op").annotate(n=Count("id")).order_by())
        if not counts:
            return "none" if run.status in SyncRun.END_STATES else "–"
        base = reverse("admin:integrations_runchange_changelist") + f"?run={run.pk}"
        return format_html_join(
            " · ",
            '<a href="{}&amp;op__exact={}">{} {}</a>',
            ((base, op, number(counts[op]), op) for op in RunChange.Op.values if op in counts),
        )

    @admin.display(description="undo")
    def undo_state(self, run):
        if run.undoes_id:
            url = reverse("admin:integrations_syncrun_change", args=[run.undoes_id])
            return format_html('undo of run <a href="{}">{}</a>', url, str(run.undoes_id)[:8])
        undone = run.undone_by.order_by("-created_at").first()
        if undone:
            url = reverse("admin:integrations_syncrun_change", args=[undone.pk])
            return format_html('undone by run <a href="{}">{}</a> ({})', url, str(undone.pk)[:8], undone.status)
        return services.undo_refusal(run) or "can be undone (the latest applied run of its integration)"

    # --- the run page -------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if run is not None:
            extra["run_live"] = run.is_live
            extra["run_tools"] = self._tools(request, run)
            if run.is_held:
                extra["held"] = self._held(run)
        return super().change_view(request, object_id, form_url, extra)

    def _tools(self, request, run):
        tools = []
        has_errors = bool(run.failed) or run.errors.exists()
        if has_errors:
            tools.append(("All errors", errors_url(run.pk)))
        if not can_review(request):
            return tools
        if run.is_held:
            tools.append(("Review (approve / reject)…", reverse("admin:integrations_syncrun_review", args=[run.pk])))
            tools.append(
                ("Download keys to delete (CSV)", reverse("admin:integrations_syncrun_deletions_csv", args=[run.pk]))
            )
        if run.can_cancel:
            tools.append(("Cancel…", reverse("admin:integrations_syncrun_cancel", args=[run.pk])))
        if run.can_retry:
            tools.append(("Retry…", reverse("admin:integrations_syncrun_retry", args=[run.pk])))
        if not services.undo_refusal(run):
            tools.append(("Undo…", reverse("admin:integrations_syncrun_undo", args=[run.pk])))
        if has_errors:
            tools.append(("Download errors CSV", reverse("admin:integrations_syncrun_errors_csv", args=[run.pk])))
        return tools

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/review/", view(self.review_view), name="integrations_syncrun_review"),
            path("<path:object_id>/cancel/", view(self.cancel_view), name="integrations_syncrun_cancel"),
            path("<path:object_id>/retry/", view(self.retry_view), name="integrations_syncrun_retry"),
            path("<path:object_id>/undo/", view(self.undo_view), name="integrations_syncrun_undo"),
            path("<path:object_id>/errors.csv", view(self.errors_csv_view), name="integrations_syncrun_errors_csv"),
            path(
                "<path:object_id>/deletions.csv",
                view(self.deletions_csv_view),
                name="integrations_syncrun_deletions_csv",
            ),
            path("<path:object_id>/changes.csv", view(self.changes_csv_view), name="integrations_syncrun_changes_csv"),
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
            elif decision == "approve" and request.POST.get("confirm_delete") != "yes":
                # approving deletes rows for good: the box says so, and nothing happens unticked
                messages.error(request, "Nothing was done: tick the box confirming the deletion to approve.")
                return self._confirmation(request, [run], verb="review")
            else:
                self._review(request, [run], approve=decision == "approve")
            return self._run_page(run)
        return self._confirmation(request, [run], verb="review")

    def deletions_csv_view(self, request, object_id):
        """Every key approving the held run would delete, from the plan the apply uses; streamed."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        run = self._run_for(request, object_id)
        if run.status != Status.NEEDS_REVIEW:
            raise Http404("this run is not held for review")
        names, keys = held_run_deletion_keys(run)

        def lines():
            out = _Line()
            yield out.row(names)
            for key in keys:
                yield out.row([cell(part) for part in key])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="deletions-{run.pk}.csv"'
        return response

    def changes_csv_view(self, request, object_id):
        """The run's change journal as CSV (`?op=` filters), the API's `?format=csv`; streamed."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        run = self._run_for(request, object_id)
        op = request.GET.get("op") or None
        if op is not None and op not in RunChange.Op.values:
            raise Http404("no such operation")
        response = StreamingHttpResponse(
            change_csv_rows(run_changes(run, op=op), integration=run.integration),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-changes.csv"'
        return response

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

    def undo_view(self, request, object_id):
        """The preview of an undo (what it would do to the table now), then the undo itself."""
        run = self._run_for(request, object_id)
        if request.method == "POST":
            try:
                undo = services.run_undo(run=run, user=request.user.get_username())
            except IntegrationsError as exc:
                messages.error(request, f"run {run.pk}: {exc.message}")
                return self._run_page(run)
            self._log(request, run, f"Undid the run: undo run {undo.pk}")
            messages.success(request, f"run {run.pk}: undo run {undo.pk} queued; it applies in its turn.")
            return self._run_page(undo)
        why = services.undo_refusal(run)
        if why:
            messages.error(request, f"run {run.pk} cannot be undone: {why}")
            return self._run_page(run)
        return self._confirmation(request, [run], verb="undo")

    def errors_csv_view(self, request, object_id):
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        run = self._run_for(request, object_id)
        return self._csv_response(run_errors(run), f"errors-{run.pk}.csv", integration=run.integration)

    # --- the decisions, shared by the run page and the changelist actions ---------------------
    def _confirmation(self, request, runs, *, verb, action=None):
        items = []
        for run in runs:
            item = {
                "run": run,
                "url": reverse("admin:integrations_syncrun_change", args=[run.pk]),
                "badge": status_badge(run.status),
            }
            if verb in ("review", "approve", "reject") and run.status == Status.NEEDS_REVIEW:
                item.update(self._held(run))
                item["held_changes"] = self._held_changes(run)
            if verb == "undo":
                item["undo"] = services.undo_preview(run)
            items.append(item)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": {
                "review": "Review a held run",
                "approve": "Approve held runs",
                "reject": "Reject held runs",
                "cancel": "Cancel runs",
                "retry": "Retry runs",
                "undo": "Undo a run",
            }[verb],
            "verb": verb,
            "items": items,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": [str(r.pk) for r in runs],
        }
        return TemplateResponse(request, "integrations/admin/run_confirm.html", context)

    def _held(self, run) -> dict:
        """What a held run's approval would delete: the count, a sample and the download link."""
        would_delete, sample = held_run_deletions(run, limit=SAMPLE_KEYS)
        return {
            "would_delete": would_delete,
            "sample": sample,
            "more": max(0, would_delete - len(sample)),
            "deletions_url": reverse("admin:integrations_syncrun_deletions_csv", args=[run.pk]),
        }

    def _held_changes(self, run) -> dict:
        """What approving a held run would change (SPEC 13: its journal, written when the guard held
        it): per operation the count and a link to those changes, and the CSV of them all."""
        counts = dict(run.changes.values_list("op").annotate(n=Count("id")).order_by())
        base = reverse("admin:integrations_runchange_changelist") + f"?run={run.pk}"
        return {
            "ops": [{"op": op, "n": counts.get(op, 0), "url": f"{base}&op__exact={op}"} for op in RunChange.Op.values],
            "total": sum(counts.values()),
            "list_url": base,
            "csv_url": reverse("admin:integrations_syncrun_changes_csv", args=[run.pk]),
        }

    def _log(self, request, run, message):
        """The decision in the admin's history (the run's "History" and "Recent actions")."""
        self.log_change(request, run, message)

    def _review(self, request, runs, *, approve):
        done = 0
        for run in runs:
            try:
                would_delete = held_run_deletions(run, limit=0)[0] if approve else 0
                services.run_review(run=run, approve=approve, user=request.user.get_username())
                self._log(
                    request,
                    run,
                    f"Approved the held run: applying it, deleting {number(would_delete)} row(s)"
                    if approve
                    else "Rejected the held run: cancelled, nothing applied",
                )
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
                was = run.status.replace("_", " ")
                services.run_cancel(run=run, reason=f"cancelled by {request.user.get_username()} in the admin")
                self._log(request, run, f"Cancelled the run (it was {was})")
                done += 1
            except IntegrationsError as exc:
                messages.error(request, f"run {run.pk}: {exc.message}")
        if done:
            messages.success(request, f"{done} run(s) cancelled.")

    def _retry(self, request, runs):
        new_runs = []
        for run in runs:
            try:
                new = services.run_retry(run=run, source=SyncRun.Source.ADMIN)
                self._log(request, run, f"Retried the run as run {new.pk}")
                new_runs.append(new)
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
    @admin.action(description="Undo the selected run (the latest applied of its integration)…", permissions=["review"])
    def undo_run(self, request, queryset):
        runs = list(queryset[:2])
        if len(runs) != 1:
            messages.warning(request, "select exactly one run to undo")
            return None
        return HttpResponseRedirect(reverse("admin:integrations_syncrun_undo", args=[runs[0].pk]))

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
            messages.warning(
                request,
                "none of the selected runs is held for review"
                + (" (held dry runs cannot be approved)" if approve else ""),
            )
            return None
        if request.POST.get("post") == "yes":
            self._review(request, runs, approve=approve)
            return None
        return self._confirmation(
            request, runs, verb="approve" if approve else "reject", action="approve_runs" if approve else "reject_runs"
        )

    @admin.action(description="Cancel selected runs", permissions=["review"])
    def cancel_runs(self, request, queryset):
        runs = list(queryset.filter(status__in=SyncRun.UNFINISHED_STATES))
        if not runs:
            messages.warning(request, "none of the selected runs can be cancelled (already applied or ended)")
            return None
        self._cancel(request, runs)
        return None

    @admin.action(description="Retry selected failed runs", permissions=["review"])
    def retry_runs(self, request, queryset):
        runs = list(queryset.filter(status__in=SyncRun.NOT_APPLIED_STATES).select_related("integration"))
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
