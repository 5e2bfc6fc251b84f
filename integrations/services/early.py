"""Validating while receiving (issue 14): a stored batch of a run that is still `receiving` (or
completed and waiting its turn) is validated and staged at once, so the workers work while the
sender sends. Only validation is early: the apply still waits for `complete` and for the order of
rule 6, and a run that ends without being applied (cancelled, expired, failed) drops what it staged
(cleanup_run runs at every end).

Bounded (`places`): at most INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER batches of one customer's
unfinished runs are handed to workers early at a time (a claim: SyncBatch.validating_since) while
another customer has an unfinished run too, so that no customer's sending takes every worker from
the others; a customer whose runs are the only unfinished ones may have as many as the cluster has
workers (nobody else's work waits for them; measured, 200,000 products on the zero-setup default with
2 workers: an identical re-sync 1.9 -> 1.8 s, its ratio to plain SQLite 48 -> 52 %). Work that
arrives meanwhile waits at most for one batch's validation, after which the customer is back to its
bound. When one is done the next is claimed.

Whatever is not validated when the run starts is handed out by process_run, claimed or not: a
claimed batch handed out again first waits for its early task, up to WAIT_FOR_CLAIM seconds from
when that task began (wait_for_claim), and is validated again only if the early task did not finish
by then (lost, or slow); it is staged once at most (the locks in batch_validate). A batch is claimed
early once at most: a claim older than INTEGRATIONS_REQUEUE_AFTER (its worker died, its task was
lost) no longer counts, and such a batch, like one whose early validation failed, is validated
after `complete` (where a failure fails the run, or is retried, as for any batch).
"""

import datetime
import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf as QConf

from ..conf import conf
from ..models import Customer, SyncBatch, SyncRun
from ..queue import Task, enqueue

# how long a batch handed out after `complete` waits for the early task validating it (see wait_for_claim):
# a batch of 50,000 records takes 0.35 s alone, under 1 s beside the sender on 2 cores. Was 10 s: in
# one round of 12 (1,000,000 records, two early places) a handed-out batch waited it out whole, for an
# early task that did not finish (the cause was not found: every other round finished in time); at
# 3 s such a case costs at most 3 s, and a batch slower than that is validated twice (staged once)
WAIT_FOR_CLAIM = 3.0

# the claim of a batch whose early validation gave up: long past, so it neither counts nor is claimed again
GAVE_UP = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def fresh_claims(now=None) -> Q:
    """Batches a worker was handed early and is (or may still be) validating."""
    since = (now or timezone.now()) - datetime.timedelta(seconds=conf.REQUEUE_AFTER)
    return Q(validating_since__gte=since, validated_at__isnull=True)


def places(customer_id) -> int:
    """How many of the customer's batches may be validated early at a time (see the module's doc):
    INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER, or every worker of the cluster while no other
    customer has an unfinished run. 0 (the setting at 0): none."""
    bound = conf.EARLY_VALIDATION_PER_CUSTOMER
    workers = int(QConf.WORKERS or 1)
    if bound <= 0 or workers <= bound:
        return max(bound, 0)
    others = SyncRun.objects.filter(status__in=SyncRun.ACTIVE_STATES).exclude(integration__customer_id=customer_id)
    return bound if others.exists() else workers


def validate_early(*, customer_id) -> int:
    """Hand the customer's stored, unvalidated batches of unstarted runs to workers, oldest first,
    up to its `places`; the number handed out."""
    if not conf.EARLY_VALIDATION:
        return 0
    now = timezone.now()
    batches = SyncBatch.objects.filter(run__integration__customer_id=customer_id)
    claims = batches.filter(fresh_claims(now), run__status__in=SyncRun.ACTIVE_STATES)
    limit = places(customer_id)
    # every place taken (the usual answer while a sender sends): known from a read, without the
    # write transaction below, which on SQLite waits for the database's one write lock (held by a
    # worker staging a batch) and made each batch post wait twice. Nothing is left unclaimed by
    # it: a place frees when its batch is marked validated (or given up), and the worker then
    # calls this itself (batch_validate), seeing every batch stored before
    if claims.count() >= limit:
        return 0
    with transaction.atomic():
        # one customer's claims are counted and made one request at a time (the row lock), so two
        # web processes receiving at once cannot both take the last free place
        if Customer.objects.select_for_update().filter(pk=customer_id).first() is None:
            return 0
        free = limit - claims.count()
        if free <= 0:
            return 0
        # an upload's batches are made by the worker that splits it, after `complete`
        ids = list(
            batches.filter(
                run__status__in=SyncRun.EARLY_STATES,
                run__upload_name="",
                validated_at__isnull=True,
                validating_since__isnull=True,
            )
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)[:free]
        )
        if ids:
            SyncBatch.objects.filter(pk__in=ids).update(validating_since=now)
            for batch_id in ids:
                enqueue(Task.VALIDATE_BATCH, batch_id, True)  # the early task of its claim
    return len(ids)


def give_up(*, batch_id) -> None:
    """An early validation failed: its place is free again, and the batch is validated after
    `complete` like any other (never early again: what failed would fail again)."""
    SyncBatch.objects.filter(pk=batch_id, validated_at__isnull=True).update(validating_since=GAVE_UP)


def begin(*, batch_id) -> None:
    """The early task of a claimed batch starts: its claim dates from now (wait_for_claim waits for
    a task that runs, not for one still queued behind others)."""
    SyncBatch.objects.filter(pk=batch_id, validated_at__isnull=True, validating_since__gt=GAVE_UP).update(
        validating_since=timezone.now()
    )


def wait_for_claim(batch: SyncBatch) -> bool:
    """A batch handed out after `complete` while a worker is validating it early: rather than decode,
    validate and stage it a second time beside that worker (the same CPU twice, on the cores the
    apply needs), wait for it, up to WAIT_FOR_CLAIM seconds from when the early task began; a claim
    older than that (a task the broker lost, or one that gave up) is not waited for, and the batch
    is validated here. True when the batch is validated now (nothing left to do)."""
    started = batch.validating_since
    while started is not None and started > timezone.now() - datetime.timedelta(seconds=WAIT_FOR_CLAIM):
        time.sleep(0.05)
        row = SyncBatch.objects.filter(pk=batch.pk).values_list("validated_at", "validating_since").first()
        if row is None or row[0] is not None:
            return True
        started = row[1]
    return False
