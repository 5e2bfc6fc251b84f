"""Reads for the API, the admin and the commands. Tenant scoping lives here, in one place."""

import re
import time
import uuid

from django.core.exceptions import ValidationError
from django.db import connection

from .exceptions import InvalidInput, NotFound
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


# What a long-poll watches: a change of any of these answers the waiting request.
_WATCHED = ("status", "batches_done", "batches_total", "received", "failed")


def run_wait_for_change(run: SyncRun, seconds: float, *, interval: float = 0.05) -> SyncRun:
    """The run as soon as its status or progress differs from `run`'s, or as it is after `seconds`
    (GET runs/{id}/?wait=N). A settled run (an end state, or held for review: nothing happens
    without a person) is returned at once, so a client never sleeps through the end it waits for.

    One small indexed query every `interval` seconds in autocommit mode: no transaction stays open
    between them (the API views are not wrapped in ATOMIC_REQUESTS), so nothing is held idle in
    transaction. The request does tie a web worker (a gunicorn sync worker) for up to `seconds`."""
    if run.is_settled:
        return run
    if connection.in_atomic_block:
        # inside a transaction (ATOMIC_REQUESTS, say) waiting would hold it open for N seconds:
        # answer at once instead, as a plain GET (clients fall back to polling)
        return run
    seen = tuple(getattr(run, name) for name in _WATCHED)
    deadline = time.monotonic() + seconds
    rows = SyncRun.objects.filter(pk=run.pk)
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(interval, left))
        now = rows.values_list(*_WATCHED).first()
        if now is None:  # purged meanwhile
            raise NotFound("no such run")
        if now != seen:
            break
    run.refresh_from_db()
    return run


def run_by_id_or_prefix(text: str) -> SyncRun:
    """A run for staff (any customer) by its id or the first characters of it (at least 4 hex
    digits, with or without dashes, as the admin's search takes them). An unknown id is NotFound;
    a prefix of several runs is InvalidInput naming a few of them."""
    term = text.strip().lower()
    try:
        run = SyncRun.objects.filter(pk=uuid.UUID(term)).first()
    except ValueError:
        if not re.fullmatch(r"[0-9a-f][0-9a-f-]{3,35}", term):
            raise InvalidInput(f"{text!r} is not a run id nor its first characters (hex digits)") from None
        digits = term.replace("-", "")
        # the canonical text (8-4-4-4-12) PostgreSQL compares with; Django drops the dashes elsewhere
        canonical = "-".join(digits[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)) if digits[a:b])
        runs = list(SyncRun.objects.filter(id__startswith=canonical).order_by("-created_at")[:6])
        if len(runs) > 1:
            shown = ", ".join(str(r.pk) for r in runs[:5]) + (", ..." if len(runs) > 5 else "")
            raise InvalidInput(f"{text!r} is the start of several runs ({shown}); give more of the id") from None
        run = runs[0] if runs else None
    if run is None:
        raise NotFound(f"unknown run {text}")
    return run


def run_errors(run: SyncRun, code: str | None = None):
    errors = RecordError.objects.filter(run=run).order_by("seq", "index", "id")
    if code:
        errors = errors.filter(code=code)
    return errors


def run_changes(run: SyncRun, op: str | None = None):
    """A run's change journal (SPEC 13), in the order it was written."""
    from .models import RunChange

    changes = RunChange.objects.filter(run=run).order_by("id")
    if op:
        changes = changes.filter(op=op)
    return changes


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
        "changes_url": f"{base}/api/v1/runs/{run.pk}/changes/",
    }


def held_run_deletion_plan(run: SyncRun):
    """What approving a held run would delete if applied now: the apply's own plan
    (ingest.deletions.DeletionPlan), which the count, the sample and the downloadable list of keys
    all read, so what staff see is what the apply deletes. A read: it never creates the staging table."""
    from .ingest.deletions import DeletionPlan
    from .targets import get_target

    return DeletionPlan.of(run, get_target(run.integration.target), run.integration.customer_id)


def held_run_deletions(run: SyncRun, *, limit: int = 20) -> tuple[int, list[str]]:
    """What approving a held run would delete: (how many rows, a sample of their keys as text)."""
    plan = held_run_deletion_plan(run)
    target = plan.target
    sample = [target.key_display(key if target.composite else key[0]) for key in plan.keys(limit)]
    return plan.count(), sample


def held_run_deletion_keys(run: SyncRun, *, chunk_size: int = 2000):
    """(the key's field names, an iterator of every key a held run would delete, as tuples of
    their values in key order): read in chunks, for a streamed download of any size."""
    plan = held_run_deletion_plan(run)
    return plan.target.keys, plan.keys(chunk_size=chunk_size)
