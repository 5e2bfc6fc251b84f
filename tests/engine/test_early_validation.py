"""Validating while receiving (issue 14 point 2): a receiving run's stored batches are validated and
staged at once, the apply still waits for `complete` and for rule 6's order, a run that ends
unapplied drops what it staged, counts stay exact, and one customer's early validations are bounded."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from integrations import services, storage
from integrations.ingest import staging
from integrations.models import RecordError, SyncBatch, SyncRun
from integrations.services import early, processing
from integrations.targets import get_target
from tests.support import product

S = SyncRun.Status
TARGET = "catalog.product"


@pytest.fixture(autouse=True)
def no_wait_for_claims(monkeypatch):
    """These tests are the workers: a claimed batch they validate after `complete` is one whose early
    task never ran (a lost task), which is not waited for (early.wait_for_claim)."""
    monkeypatch.setattr(early, "WAIT_FOR_CLAIM", 0.0)


def body(records, seq=1) -> bytes:
    return json.dumps({"seq": seq, "records": records}).encode()


def receive(run, seq, records):
    batch, created = services.batch_receive(run=run, seq=seq, body=body(records, seq), content_type="application/json")
    return batch


def staged_rows(run) -> int:
    return staging.staged(get_target(TARGET), run.pk, None).count()


def fresh(obj):
    obj.refresh_from_db()
    return obj


def test_batches_of_a_receiving_run_are_validated_and_staged_before_complete(integration, customer):
    integration.max_error_rate = 1.0
    integration.save()
    run, _ = services.run_create(integration=integration, mode="incremental")
    first = receive(run, 1, [product("A"), product("B", price="oops")])
    second = receive(run, 2, [product("C"), product("A", name="again")])  # A again: a duplicate across batches
    assert fresh(run).status == S.RECEIVING
    assert all(fresh(b).validated_at for b in (first, second))
    assert (fresh(first).valid, fresh(first).invalid) == (1, 1)
    assert staged_rows(run) == fresh(first).staged + fresh(second).staged > 0
    assert not Product.objects.exists()  # validated, never applied before `complete`

    services.run_complete(run=run)
    run = fresh(run)
    assert run.status == S.PARTIAL
    assert (run.received, run.created, run.updated, run.unchanged, run.failed) == (4, 2, 0, 0, 2)
    errors = sorted((e.seq, e.index, e.code) for e in RecordError.objects.filter(run=run))
    assert errors == [(1, 1, "invalid"), (2, 1, "duplicate_key")]  # each once: no batch validated twice
    assert Product.objects.get(sku="A").name == "Product A"  # the first one stays
    assert staged_rows(run) == 0


def test_a_batch_posted_again_with_the_same_bytes_is_not_validated_again(integration):
    run, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(run, 1, [product("A"), {"sku": "X"}])
    validated_at = fresh(batch).validated_at
    again, created = services.batch_receive(
        run=run, seq=1, body=body([product("A"), {"sku": "X"}], 1), content_type="application/json"
    )
    assert (again.pk, created) == (batch.pk, False)
    assert fresh(batch).validated_at == validated_at
    assert RecordError.objects.filter(run=run).count() == 1
    services.run_complete(run=run)
    assert (fresh(run).received, fresh(run).failed) == (2, 1)


@pytest.mark.parametrize("end", ["cancel", "expire"])
def test_a_run_ended_unapplied_drops_what_it_staged(integration, end, settings):
    run, _ = services.run_create(integration=integration)
    receive(run, 1, [product(f"P{i}") for i in range(5)])
    assert staged_rows(run) == 5
    if end == "cancel":
        services.run_cancel(run=run)
    else:
        SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=2))
        assert services.sweep()["cancelled"] == 1
    assert fresh(run).status == S.CANCELLED
    assert staged_rows(run) == 0
    assert not Product.objects.exists()


def test_runs_still_apply_in_completion_order(integration, customer):
    """Rule 6: both runs are validated while receiving; the one completed first applies first."""
    first, _ = services.run_create(integration=integration, mode="incremental")
    second, _ = services.run_create(integration=integration, mode="incremental")
    receive(first, 1, [product("A", name="created first")])
    receive(second, 1, [product("A", name="created second")])
    assert all(b.validated_at for b in SyncBatch.objects.filter(run__in=[first, second]))
    services.run_complete(run=second)
    assert Product.objects.get(sku="A").name == "created second"
    services.run_complete(run=first)
    assert Product.objects.get(sku="A").name == "created first"
    assert (fresh(first).status, fresh(second).status) == (S.SUCCEEDED, S.SUCCEEDED)


def test_a_run_behind_a_held_one_is_validated_but_waits(integration, customer):
    run, _ = services.run_create(integration=integration)
    receive(run, 1, [product(f"P{i}") for i in range(20)])
    services.run_complete(run=run)
    held, _ = services.run_create(integration=integration)
    receive(held, 1, [product("P0")])
    services.run_complete(run=held)
    assert fresh(held).status == S.NEEDS_REVIEW
    later, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(later, 1, [product("NEW")])
    services.run_complete(run=later)
    assert fresh(later).status == S.QUEUED and fresh(batch).validated_at is not None
    assert not Product.objects.filter(sku="NEW").exists()
    services.run_review(run=held, approve=False)
    assert fresh(later).status == S.SUCCEEDED
    assert Product.objects.filter(sku="NEW").exists()


def claimed(customer) -> list:
    """The customer's batches handed to a worker early and not validated yet."""
    return list(SyncBatch.objects.filter(early.fresh_claims(), run__integration__customer=customer).order_by("pk"))


def test_early_validation_is_bounded_per_customer(integration, customer, other_customer, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # the queue only: we are the workers below
    settings.INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER = 2
    theirs = services.integration_create(customer=other_customer, slug="products", target=TARGET)
    runs = [services.run_create(integration=integration, mode="incremental")[0] for _ in range(3)]
    for n, run in enumerate(runs):
        for seq in (1, 2):
            receive(run, seq, [product(f"R{n}-{seq}")])
    other_run, _ = services.run_create(integration=theirs, mode="incremental")
    receive(other_run, 1, [product("THEIRS")])
    assert len(claimed(customer)) == 2  # six batches stored, two handed out
    assert len(claimed(other_customer)) == 1  # another customer is not held back by the first
    done = 0
    while claimed(customer):
        batch = claimed(customer)[0]
        services.batch_validate(batch_id=batch.pk)  # one finishes: the next takes its place
        done += 1
        assert len(claimed(customer)) <= 2
    assert done == 6
    assert not SyncBatch.objects.filter(run__in=runs, validated_at__isnull=True).exists()


def test_what_is_left_is_validated_after_complete(integration, customer, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    settings.INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER = 1
    run, _ = services.run_create(integration=integration, mode="incremental")
    for seq in (1, 2, 3):
        receive(run, seq, [product(f"P{seq}")])
    first = claimed(customer)[0]
    services.batch_validate(batch_id=first.pk)  # the only early one done; the next is claimed
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    services.run_process(run_id=run.pk)
    for batch in SyncBatch.objects.filter(run=run, validated_at__isnull=True):
        services.batch_validate(batch_id=batch.pk)
    services.run_apply(run_id=run.pk)
    run = fresh(run)
    assert (run.status, run.received, run.created) == (S.SUCCEEDED, 3, 3)
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["P1", "P2", "P3"]


def test_an_early_failure_frees_its_place_and_fails_the_run_after_complete(integration, customer, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    run, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(run, 1, [product("A")])
    assert claimed(customer) == [batch]
    storage.delete_payload(batch.payload)  # the stored bytes are gone
    services.batch_validate(batch_id=batch.pk)
    assert fresh(run).status == S.RECEIVING  # nothing is decided before `complete`
    assert claimed(customer) == [] and fresh(batch).validated_at is None  # not claimed again and again
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    services.run_process(run_id=run.pk)
    services.batch_validate(batch_id=batch.pk)
    assert fresh(run).status == S.FAILED
    assert "batch 1 could not be read" in fresh(run).message


def test_early_validation_can_be_turned_off(integration, settings):
    settings.INTEGRATIONS_EARLY_VALIDATION = False
    run, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(run, 1, [product("A")])
    assert fresh(batch).validated_at is None and staged_rows(run) == 0
    services.run_complete(run=run)
    assert fresh(run).status == S.SUCCEEDED and Product.objects.filter(sku="A").exists()


def test_a_lost_early_task_does_not_hold_the_run_up(integration, customer, settings, monkeypatch):
    monkeypatch.setattr(early, "WAIT_FOR_CLAIM", 0.3)  # a batch handed out again waits this long for its claim
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # the early task goes to a queue no worker reads: lost
    run, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(run, 1, [product("A")])
    assert claimed(customer) == [batch]
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True  # now a worker runs what is queued from here on
    services.run_complete(run=run)
    assert fresh(run).status == S.SUCCEEDED and Product.objects.filter(sku="A").exists()


def test_a_batch_handed_out_again_waits_for_its_early_task_instead_of_validating_twice(
    integration, customer, settings, monkeypatch
):
    monkeypatch.setattr(early, "WAIT_FOR_CLAIM", 10.0)
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    run, _ = services.run_create(integration=integration, mode="incremental")
    batch = receive(run, 1, [product("A"), product("B", price="oops")])
    assert claimed(customer) == [batch]
    services.run_complete(run=run)
    services.integration_kick(integration_id=integration.pk)
    services.run_process(run_id=run.pk)  # hands the claimed batch out again
    validations = []
    real_validate = processing._validate

    def counted(batch, **kwargs):
        validations.append(batch.pk)
        return real_validate(batch, **kwargs)

    monkeypatch.setattr(processing, "_validate", counted)
    real_sleep = time.sleep

    waited = []

    def early_task_finishes(seconds):  # while the second task waits, the early one finishes
        monkeypatch.setattr(time, "sleep", real_sleep)
        waited.append(seconds)
        services.batch_validate(batch_id=batch.pk, early_task=True)

    monkeypatch.setattr(time, "sleep", early_task_finishes)
    services.batch_validate(batch_id=batch.pk)  # the task handed out after `complete`
    assert waited and validations == [batch.pk]  # it waited, and the early task validated it, once
    assert RecordError.objects.filter(run=run).count() == 1 and staged_rows(run) == 2
    services.run_apply(run_id=run.pk)
    assert fresh(run).status == S.FAILED  # 1 of 2 failed, above the default max_error_rate: validated as usual


def test_a_customer_alone_may_validate_early_on_every_worker(
    integration, customer, other_customer, settings, monkeypatch
):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # the queue only: we are the workers below
    settings.INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER = 1
    monkeypatch.setattr(early.QConf, "WORKERS", 3)
    run, _ = services.run_create(integration=integration, mode="incremental")
    for seq in (1, 2, 3, 4):
        receive(run, seq, [product(f"P{seq}")])
    assert len(claimed(customer)) == 3  # nobody else has an unfinished run: every worker
    # another customer starts sending: from then on each has its one place
    theirs = services.integration_create(customer=other_customer, slug="products", target=TARGET)
    other_run, _ = services.run_create(integration=theirs, mode="incremental")
    receive(other_run, 1, [product("THEIRS")])
    assert len(claimed(other_customer)) == 1
    assert early.places(customer.pk) == 1 and early.places(other_customer.pk) == 1
    services.batch_validate(batch_id=claimed(customer)[0].pk)  # a place frees: not taken again
    assert len(claimed(customer)) == 2
    services.run_cancel(run=other_run)  # alone again: the next free place is taken
    services.batch_validate(batch_id=claimed(customer)[0].pk)
    assert len(claimed(customer)) == 2 and early.places(customer.pk) == 3


def test_no_place_at_all_when_the_bound_is_zero(integration, customer, settings, monkeypatch):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False
    settings.INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER = 0
    monkeypatch.setattr(early.QConf, "WORKERS", 3)
    run, _ = services.run_create(integration=integration, mode="incremental")
    receive(run, 1, [product("A")])
    assert claimed(customer) == [] and early.places(customer.pk) == 0
