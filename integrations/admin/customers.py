"""Customers, with their integrations and API keys inline. A key is created by the service and
shown once (a message); revoking one is a button that acts at once."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from .. import services
from ..exceptions import IntegrationsError
from ..models import ApiKey, Customer, Integration
from .common import ADMIN_CSS, ServiceCheckedForm, adopt, render_field


class EmailListField(forms.CharField):
    """A list of e-mail addresses typed one per line or separated by commas."""

    widget = forms.Textarea(attrs={"rows": 2, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(value)
        return value

    def to_python(self, value):
        if isinstance(value, (list, tuple)):
            return list(value)
        text = (value or "").replace(",", "\n").replace(";", "\n")
        return [part.strip() for part in text.splitlines() if part.strip()]

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        try:
            services.validate_emails(value)
        except IntegrationsError as exc:
            raise forms.ValidationError(exc.message) from None

    def has_changed(self, initial, data):
        return list(initial or []) != self.to_python(data)


class CustomerForm(ServiceCheckedForm):
    contacts = EmailListField(required=False, help_text="Technical contacts, one e-mail per line")
    check = staticmethod(services.customer_check)

    class Meta:
        model = Customer
        fields = ["slug", "name", "is_active", "contacts"]


class IntegrationInline(admin.TabularInline):
    model = Integration
    fields = ("slug", "target", "default_mode", "is_active", "error_rate_limit", "deletes_limit")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # an integration is set up on its own page, where every setting is validated

    # both limits in percent, as the integration's own form shows them
    @admin.display(description="max error rate")
    def error_rate_limit(self, integration):
        return f"{integration.max_error_rate * 100:g} %"

    @admin.display(description="max deletes")
    def deletes_limit(self, integration):
        return f"{integration.max_deletes_percent:g} %"


def key_state(key):
    """ "active" (green) or "revoked" (red): the stock boolean icon of `revoked` shows a red cross
    for a key that works, which reads as the opposite."""
    if not key.pk:
        return ""
    return render_field("key_state", state="revoked" if key.revoked else "active")


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "created", "expiry_date", "last_used_at", "state", "revoke_button")
    readonly_fields = ("prefix", "created", "last_used_at", "state", "revoke_button")
    extra = 0
    can_delete = False
    verbose_name = "API key"
    verbose_name_plural = "API keys (a new key is shown once, after saving)"

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if not self.has_change_permission(request, obj):
            fields.remove("revoke_button")
        return fields

    @admin.display(description="state")
    def state(self, key):
        return key_state(key)

    @admin.display(description="")
    def revoke_button(self, key):
        if not key.pk:
            return ""
        if key.revoked:
            return "revoked"
        url = reverse("admin:integrations_customer_revoke_key", args=[key.customer_id, key.prefix])
        return render_field("revoke_button", url=url, prefix=key.prefix)


def log_revoke(model_admin, request, key):
    """A revocation in the admin's history: on the key, and on its customer (where it was done)."""
    message = f"Revoked API key {key.prefix} ({key.name}): requests with it are refused"
    model_admin.log_change(request, key, message)
    model_admin.log_change(request, key.customer, message)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    class Media:
        css = ADMIN_CSS

    form = CustomerForm
    list_display = ("slug", "name", "is_active", "integration_count", "created_at")
    list_filter = ("is_active",)
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)
    inlines = [IntegrationInline, ApiKeyInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(n_integrations=Count("integrations"))

    @admin.display(description="integrations", ordering="n_integrations")
    def integration_count(self, customer):
        return customer.n_integrations

    def save_model(self, request, obj, form, change):
        """Through the service the commands use: its checks ran on the form, they run again here."""
        data = form.cleaned_data
        given = {
            keyword: data[field]
            for keyword, field in (
                ("slug", "slug"),
                ("name", "name"),
                ("emails", "contacts"),
                ("is_active", "is_active"),
            )
            if field in data
        }
        if change:
            services.customer_update(customer=obj, **given)
        else:
            adopt(obj, services.customer_create(**given))

    def save_formset(self, request, form, formset, change):
        if formset.model is not ApiKey:
            return super().save_formset(request, form, formset, change)
        # existing keys: name and expiry may change; new keys come from the service, shown once
        added, changed = [], []
        for key_form in formset.forms:
            if not key_form.has_changed() or key_form.cleaned_data.get("DELETE"):
                continue
            data = key_form.cleaned_data
            if key_form.instance.pk:
                changed.append((key_form.save(), key_form.changed_data))
                continue
            key, raw = services.api_key_create(customer=form.instance, name=data.get("name") or "default")
            if data.get("expiry_date"):
                key.expiry_date = data["expiry_date"]
                key.save(update_fields=["expiry_date"])
            added.append(key)
            messages.warning(request, render_field("new_api_key", key=key, customer=form.instance, raw=raw))
        # what the change view's history entry says ("Added API key ..."): the keys made here
        formset.new_objects, formset.changed_objects, formset.deleted_objects = added, changed, []

    def get_urls(self):
        urls = [
            path(
                "<int:customer_id>/revoke-key/<str:prefix>/",
                self.admin_site.admin_view(self.revoke_key_view),
                name="integrations_customer_revoke_key",
            ),
        ]
        return urls + super().get_urls()

    def revoke_key_view(self, request, customer_id, prefix):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:integrations_customer_change", args=[customer_id]))
        customer = get_object_or_404(Customer, pk=customer_id)
        if not self.has_change_permission(request, customer):
            raise PermissionDenied
        if not ApiKey.objects.filter(customer=customer, prefix=prefix).exists():
            messages.error(request, f"{customer.slug} has no API key {prefix}")
        else:
            try:
                key = services.api_key_revoke(prefix=prefix)
                log_revoke(self, request, key)
                messages.success(request, f"API key {prefix} is revoked: requests with it are refused from now on.")
            except IntegrationsError as exc:
                messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("admin:integrations_customer_change", args=[customer.pk]))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    class Media:
        css = ADMIN_CSS

    list_display = ("prefix", "name", "customer", "created", "expiry_date", "last_used_at", "state")
    list_filter = ("revoked", "customer")
    search_fields = ("prefix", "name", "customer__slug")
    list_select_related = ("customer",)
    fields = ("customer", "name", "prefix", "created", "expiry_date", "last_used_at", "state")
    readonly_fields = ("customer", "prefix", "created", "last_used_at", "state")
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False  # keys are created on their customer's page (or `create_api_key`): shown once there

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        prefixes = list(queryset.filter(revoked=False).values_list("prefix", flat=True))
        for prefix in prefixes:
            log_revoke(self, request, services.api_key_revoke(prefix=prefix))
        messages.success(request, f"{len(prefixes)} API key(s) revoked.")

    @admin.display(description="state", ordering="revoked")
    def state(self, key):
        return key_state(key)
