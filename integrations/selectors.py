"""Reads for the API, the admin and the commands. Tenant scoping lives here, in one place."""

from django.core.exceptions import ValidationError

from .exceptions import NotFound
from .models import Customer, Integration, RecordError, SyncRun


def integrations_for(customer: Customer):
    return Integration.objects.filter(customer=customer, is_active=True).order_by("slug")


def integration_for(customer: Customer, slug: str) -> Integration:
    integration = integrations_for(customer).filter(slug=slug).select_related("customer").first()
    if integration is None:
        raise NotFound(f"no integration {slug!r}")
    return integration


def runs_for(customer: Customer):
    return SyncRun.objects.filter(integration__customer=customer).select_related("integration__customer")


def run_for(customer: Customer, run_id) -> SyncRun:
    try:
        run = runs_for(customer).filter(pk=run_id).first()
    except (ValueError, TypeError, ValidationError):
        run = None
    if run is None:
        raise NotFound("no such run")
    return run


def run_errors(run: SyncRun, code: str | None = None):
    errors = RecordError.objects.filter(run=run).order_by("seq", "index", "id")
    if code:
        errors = errors.filter(code=code)
    return errors
