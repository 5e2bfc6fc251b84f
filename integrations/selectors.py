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


def run_representation(run: SyncRun, *, base_url: str | None = None) -> dict:
    """The run object of SPEC section 4, used alike by the API and the webhooks."""
    from .conf import conf

    def iso(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    base = (base_url if base_url is not None else conf.BASE_URL).rstrip("/")
    return {
        "id": str(run.pk),
        "integration": run.integration.slug,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "status": run.status,
        "source": run.source,
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "counts": run.counts,
        "progress": {"batches_total": run.batches_total, "batches_done": run.batches_done},
        "message": run.message,
        "errors_url": f"{base}/api/v1/runs/{run.pk}/errors/",
    }


def held_run_deletions(run: SyncRun, *, limit: int = 20) -> tuple[int, list[str]]:
    """What approving a held run would delete if applied now: (how many rows, a sample of their
    keys as text), by the rule of ingest.apply.plan_and_apply (its `deletions`)."""
    from .ingest import staging
    from .ingest.apply import deletions
    from .targets import get_target

    target = get_target(run.integration.target)
    staging.ensure_table(target)
    explicit, snapshot, _ = deletions(run, target, run.integration.customer_id)
    doomed = explicit if snapshot is None else explicit | snapshot
    keys = target.keys
    sample = [target.key_display(row if target.composite else row[0])
              for row in doomed.order_by(*keys).values_list(*keys)[:limit]]
    return doomed.count(), sample
