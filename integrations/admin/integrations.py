"""Integrations: every setting, validated and saved by the same services the commands use, and the
"Sync a file" page (upload, preview as a dry run, then run it for real: services/preview.py)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .. import services
from ..exceptions import IntegrationsError, NotFound, PayloadGone
from ..formats import Format
from ..models import Integration, Mode, SyncRun
from ..selectors import run_errors
from ..targets import adapter_names, target_names
from .common import ADMIN_CSS, ServiceCheckedForm, adopt, status_badge
from .customers import EmailListField


def _target_choices():
    return [(name, name) for name in target_names()]


def _adapter_choices():
    return [("", "— none —")] + [(name, name) for name in adapter_names()]


class IntegrationForm(ServiceCheckedForm):
    target = forms.ChoiceField(choices=_target_choices, help_text="A registered sync target")
    adapter = forms.ChoiceField(
        choices=_adapter_choices,
        required=False,
        help_text="Customer-specific logic applied to each record before validation",
    )
    field_map = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "vLargeTextField"}),
        help_text='JSON object: customer field -> target field, or null to drop it, e.g. {"Title": "name", "Legacy": null}',
    )
    contacts = EmailListField(required=False, help_text="One e-mail per line; empty: the customer's contacts")
    # both limits read as percent here (the model keeps the error rate as a fraction, as the API
    # and the commands document it): 5 beside 20, not 0.05 beside 20.0
    max_error_rate = forms.FloatField(
        label="Max error rate (%)",
        min_value=0,
        max_value=100,
        initial=0,
        help_text="Percent of failed records above which the run fails (0: any failed record fails it; "
        "100: never). Stored as a fraction (5 % = 0.05), as the API and the commands take it.",
    )
    max_deletes_percent = forms.FloatField(
        label="Max deletes (%)",
        min_value=0,
        max_value=100,
        initial=20,
        help_text="Percent of the current rows a full sync may delete (when more than 10) before the run "
        "is held for a staff review.",
    )
    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"size": 60}),
        help_text="Receives a signed POST on every end state of a run",
    )
    check = staticmethod(services.integration_check)

    class Meta:
        model = Integration
        fields = [
            "customer",
            "slug",
            "target",
            "default_mode",
            "is_active",
            "field_map",
            "adapter",
            "max_error_rate",
            "max_deletes_percent",
            "webhook_url",
            "webhook_secret",
            "contacts",
        ]
        widgets = {"webhook_secret": forms.TextInput(attrs={"size": 50, "autocomplete": "off"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rate = self.initial.get("max_error_rate")
        if isinstance(rate, (int, float)):
            self.initial["max_error_rate"] = round(rate * 100, 6)

    def clean_max_error_rate(self):
        return round(self.cleaned_data["max_error_rate"] / 100, 8)

    def clean(self):
        data = super().clean()
        if data.get("field_map") is None:
            data["field_map"] = {}
        return data


class SyncFileForm(forms.Form):
    file = forms.FileField(help_text="A JSON array, NDJSON (one record per line) or CSV file")
    format = forms.ChoiceField(
        choices=[("", "by the file name"), *Format.choices],
        required=False,
    )
    mode = forms.ChoiceField(
        choices=Mode.choices,
        widget=forms.RadioSelect,
        help_text="Full: rows absent from the file are deleted. Incremental: upserts only.",
    )


SECRET_STATUS = "webhook_secret_status"


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    class Media:
        css = ADMIN_CSS

    form = IntegrationForm
    list_display = ("__str__", "customer", "target", "default_mode", "is_active", "last_run", "sync_file_link")
    list_filter = ("is_active", "target", "default_mode", "customer")
    search_fields = ("slug", "customer__slug", "customer__name")
    list_select_related = ("customer",)
    readonly_fields = ("created_at",)
    fieldsets = [
        (None, {"fields": ["customer", "slug", "target", "default_mode", "is_active", "created_at"]}),
        ("Mapping", {"fields": ["field_map", "adapter"]}),
        ("Error policy and deletion guard", {"fields": ["max_error_rate", "max_deletes_percent"]}),
        ("Reporting back", {"fields": ["webhook_url", "webhook_secret", "contacts"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # who may only look (the reviewers) sees whether a signing secret is set, never the secret
        return [
            (name, {**options, "fields": [SECRET_STATUS if f == "webhook_secret" else f for f in options["fields"]]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if self.has_change_permission(request, obj) else (*readonly, SECRET_STATUS)

    # integration_create's keywords, as the form's fields
    SETTINGS = (
        ("customer", "customer"),
        ("slug", "slug"),
        ("target", "target"),
        ("mode", "default_mode"),
        ("is_active", "is_active"),
        ("field_map", "field_map"),
        ("adapter", "adapter"),
        ("max_error_rate", "max_error_rate"),
        ("max_deletes_percent", "max_deletes_percent"),
        ("webhook_url", "webhook_url"),
        ("webhook_secret", "webhook_secret"),
        ("contacts", "contacts"),
    )

    def save_model(self, request, obj, form, change):
        """Through the service the commands use: its checks ran on the form, they run again here."""
        given = {keyword: form.cleaned_data[field] for keyword, field in self.SETTINGS if field in form.cleaned_data}
        if change:
            services.integration_update(integration=obj, **given)
        else:
            adopt(obj, services.integration_create(**given))

    @admin.display(description="webhook secret")
    def webhook_secret_status(self, integration):
        return "set (hidden)" if integration.webhook_secret else "not set"

    def get_queryset(self, request):
        last = SyncRun.objects.filter(integration=OuterRef("pk"), dry_run=False).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(last_run_status=Subquery(last.values("status")[:1]), last_run_id=Subquery(last.values("pk")[:1]))
        )

    @admin.display(description="last run", ordering="last_run_status")
    def last_run(self, integration):
        if not integration.last_run_status:
            return "–"
        url = reverse("admin:integrations_syncrun_change", args=[integration.last_run_id])
        return format_html('<a href="{}">{}</a>', url, status_badge(integration.last_run_status))

    @admin.display(description="")
    def sync_file_link(self, integration):
        url = reverse("admin:integrations_integration_sync_file", args=[integration.pk])
        return format_html('<a href="{}">Sync a file</a>', url)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/sync-file/",
                self.admin_site.admin_view(self.sync_file_view),
                name="integrations_integration_sync_file",
            ),
        ] + super().get_urls()

    # --- "Sync a file" --------------------------------------------------------------------------
    def sync_file_view(self, request, object_id):
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            raise Http404("no such integration")
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        here = reverse("admin:integrations_integration_sync_file", args=[integration.pk])
        preview = self._preview(integration, request.POST.get("preview") or request.GET.get("preview"))
        form = SyncFileForm(initial={"mode": integration.default_mode})

        if request.method == "POST" and "_run" in request.POST:
            if preview is None:
                raise Http404("no such preview")
            return self._run_for_real(request, preview, here)
        if request.method == "POST":
            form = SyncFileForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                dry_run = "_sync" not in request.POST
                try:
                    run = services.upload_create(
                        integration=integration,
                        stream=upload,
                        filename=upload.name,
                        fmt=form.cleaned_data["format"] or None,
                        mode=form.cleaned_data["mode"],
                        dry_run=dry_run,
                        source=SyncRun.Source.ADMIN,
                    )
                except IntegrationsError as exc:
                    form.add_error("file", exc.message)
                else:
                    if dry_run:
                        return HttpResponseRedirect(f"{here}?preview={run.pk}")
                    messages.success(request, f"Run {run.pk} of {upload.name} started.")
                    return HttpResponseRedirect(reverse("admin:integrations_syncrun_change", args=[run.pk]))

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Sync a file into {integration}",
            "integration": integration,
            "form": form,
            "preview": preview,
            "preview_live": preview is not None and preview.is_live,
            "preview_done": preview is not None and preview.is_settled,
            "preview_errors": list(run_errors(preview)[:10]) if preview is not None else [],
            "errors_url": (reverse("admin:integrations_recorderror_changelist") + f"?run={preview.pk}")
            if preview is not None
            else "",
            "has_view_permission": True,
        }
        return TemplateResponse(request, "integrations/admin/sync_file.html", context)

    def _preview(self, integration, run_id):
        if not run_id:
            return None
        try:
            return services.preview_get(integration=integration, run_id=run_id)
        except NotFound:
            raise Http404("no such preview") from None

    def _run_for_real(self, request, preview, here):
        try:
            run = services.preview_run(preview=preview, source=SyncRun.Source.ADMIN)
        except PayloadGone as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(here)
        except IntegrationsError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(f"{here}?preview={preview.pk}")
        messages.success(request, f"Run {run.pk} of {preview.upload_filename} started (previewed as {preview.pk}).")
        return HttpResponseRedirect(reverse("admin:integrations_syncrun_change", args=[run.pk]))
