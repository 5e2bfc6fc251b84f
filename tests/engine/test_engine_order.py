"""Rule 6 (order of runs per integration) and rule 8 (idempotent tasks), through the services."""

import json

from django.test import override_settings

from catalog.models import Product
from integrations import services, tasks
from integrations.models import SyncRun
from tests.support import product, sync

S = SyncRun.Status


def open_run(integration, records, mode=None, dry_run=False):
    run, _ = services.run_create(integration=integration, mode=mode, dry_run=dry_run)
    services.batch_receive(
        run=run, seq=1, body=json.dumps({"records": records}).encode(), content_type="application/json"
    )
    return run


def status(run):
    run.refresh_from_db()
    return run.status


def test_runs_apply_in_completion_order_not_creation_order(integration, customer, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # queue only: we drive the worker by hand below
    first = open_run(integration, [product("A", name="created first")], mode="incremental")
    second = open_run(integration, [product("A", name="created second")], mode="incremental")
    services.run_complete(run=second)
    services.run_complete(run=first)
    # the worker: start the head of the queue, process it to the end, then the next
    head = services.integration_kick(integration_id=integration.pk)
    assert head.pk == second.pk
    assert services.integration_kick(integration_id=integration.pk) is None  # one at a time
    for run in (second, first):
        services.run_process(run_id=run.pk)
        for batch in run.batches.all():
            services.batch_validate(batch_id=batch.pk)
        services.run_apply(run_id=run.pk)
        assert status(run) == S.SUCCEEDED
        services.integration_kick(integration_id=integration.pk)
    assert Product.objects.get(customer=customer, sku="A").name == "created first"


def test_held_run_blocks_later_runs_until_reviewed(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    held = sync(integration, [product("P0")])
    assert held.status == S.NEEDS_REVIEW
    later = sync(integration, [product("NEW")], mode="incremental")
    assert later.status == S.QUEUED
    services.run_review(run=held, approve=False)
    assert status(later) == S.SUCCEEDED
    assert Product.objects.filter(customer=customer).count() == 21


def test_later_full_run_supersedes_a_held_one(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    held = sync(integration, [product("P0")])
    newer = sync(integration, [product(f"P{i}") for i in range(20)] + [product("X")])
    assert status(held) == S.CANCELLED
    assert held.message == f"superseded by run {newer.pk}"
    assert newer.status == S.SUCCEEDED and newer.created == 1


def test_dry_runs_never_wait_and_never_block(integration, customer):
    sync(integration, [product(f"P{i}") for i in range(20)])
    held = sync(integration, [product("P0")])
    dry = sync(integration, [product("P0", name="dry")], dry_run=True, mode="incremental")
    assert dry.status == S.SUCCEEDED and dry.updated == 1  # not blocked by the held run
    assert status(held) == S.NEEDS_REVIEW  # and did not supersede it
    assert Product.objects.get(customer=customer, sku="P0").name == "Product P0"


def test_runs_of_different_integrations_do_not_wait_for_each_other(integration, customer):
    other = services.integration_create(customer=customer, slug="more", target="catalog.product")
    sync(integration, [product(f"P{i}") for i in range(20)])
    held = sync(integration, [product("P0")])
    assert held.status == S.NEEDS_REVIEW
    run = sync(other, [product("Z")], mode="incremental")
    assert run.status == S.SUCCEEDED


def test_a_task_run_twice_applies_once(integration, customer):
    sync(integration, [product("A")])
    run = sync(integration, [product("A", price=5), product("B")])
    assert run.counts == {"received": 2, "created": 1, "updated": 1, "unchanged": 0, "deleted": 0, "failed": 0}
    # a re-delivered task for every step: nothing changes
    for batch in run.batches.all():
        tasks.validate_batch(batch.pk)
    tasks.process_run(str(run.pk))
    tasks.apply_run(str(run.pk))
    run.refresh_from_db()
    assert run.counts == {"received": 2, "created": 1, "updated": 1, "unchanged": 0, "deleted": 0, "failed": 0}
    assert Product.objects.filter(customer=customer).count() == 2


def test_validation_delivered_twice_before_apply_stages_once(integration, customer, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    run = open_run(integration, [product("A"), product("B")])
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    batch = run.batches.get()
    services.batch_validate(batch_id=batch.pk)
    services.batch_validate(batch_id=batch.pk)
    services.run_apply(run_id=run.pk)
    services.run_apply(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED and run.created == 2 and run.received == 2


def test_staging_lost_in_a_crash_is_validated_again(integration, customer, settings):
    """An UNLOGGED staging table is emptied by PostgreSQL's crash recovery: the apply notices and
    validates the batches again instead of applying a short run (which could delete rows)."""
    from integrations.ingest import staging
    from integrations.targets import get_target

    sync(integration, [product("A"), product("B")])
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    run = open_run(integration, [product("A"), product("B"), product("C")])
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    services.batch_validate(batch_id=run.batches.get().pk)
    staging.staged(get_target("catalog.product"), run.pk).delete()  # what crash recovery does
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True
    services.run_apply(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED and run.created == 1 and run.unchanged == 2 and run.deleted == 0
    assert Product.objects.filter(customer=customer).count() == 3


def test_cancel_before_apply_and_not_after(integration):
    run, _ = services.run_create(integration=integration)
    services.run_cancel(run=run)
    assert status(run) == S.CANCELLED
    done = sync(integration, [product("A")])
    try:
        services.run_cancel(run=done)
    except Exception as exc:  # Conflict
        assert "not yet applied" in str(exc)
    else:
        raise AssertionError("a succeeded run was cancelled")


@override_settings(INTEGRATIONS_RECEIVING_TIMEOUT=0, INTEGRATIONS_REQUEUE_AFTER=0)
def test_sweeper_cancels_stale_receiving_runs_and_requeues_silent_ones(integration, customer, settings):
    stale, _ = services.run_create(integration=integration)
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    silent = open_run(integration, [product("A")], mode="incremental")
    services.run_complete(run=silent)
    services.integration_kick(integration_id=integration.pk)  # processing, but its tasks are "lost"
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True
    done = services.sweep()
    assert status(stale) == S.CANCELLED and "never completed" in stale.message
    assert done["requeued"] == 1
    assert status(silent) == S.SUCCEEDED
    assert Product.objects.filter(customer=customer, sku="A").exists()


@override_settings(INTEGRATIONS_REQUEUE_AFTER=0, INTEGRATIONS_MAX_ATTEMPTS=1)
def test_sweeper_gives_up_after_max_attempts(integration, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    run = open_run(integration, [product("A")], mode="incremental")
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    services.sweep()
    assert status(run) == S.FAILED and "gave up" in run.message
