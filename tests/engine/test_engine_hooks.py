"""The host's hooks (SPEC 2): adapters with a context, batch adapters, and the run_finished signal
sent after commit for every end state."""

import pytest
from django.db import connection

from crm.models import Category, Contact
from integrations import services
from integrations.models import RecordError, SyncRun
from integrations.signals import run_finished
from integrations.targets import register_adapter
from tests.support import product, sync

S = SyncRun.Status


@register_adapter("test-context")
def tag_with_customer(record, context):
    """Two arguments: gets the context (customer, integration, run)."""
    record = dict(record)
    record["name"] = f"{context.customer.slug}/{context.integration.slug}/{str(context.run.pk)[:4]}"
    return record


LOOKUPS: list[int] = []


@register_adapter("test-category-names", batch=True)
def category_by_name(records, context):
    """A batch adapter: one query for the whole batch turns category names into codes."""
    names = {r.get("category_name") for r in records} - {None}
    LOOKUPS.append(len(names))
    codes = dict(Category.objects.filter(customer=context.customer, name__in=names).values_list("name", "code"))
    out = []
    for record in records:
        record = dict(record)
        name = record.pop("category_name", None)
        if name is not None and name not in codes:
            out.append(ValueError(f"no category named {name!r}"))
            continue
        record["category"] = codes.get(name)
        out.append(record)
    return out


@register_adapter("test-batch-one-argument", batch=True)
def upper_names(records):
    return [{**r, "name": r["name"].upper()} for r in records]


def contact(external_id, **extra):
    return {
        "external_id": external_id,
        "email": f"c{external_id}@example.com",
        "signed_up_at": "2024-03-01T10:00:00Z",
        **extra,
    }


def test_an_adapter_with_two_arguments_gets_the_context(customer):
    integration = services.integration_create(
        customer=customer, slug="ctx", target="catalog.product", adapter="test-context"
    )
    run = sync(integration, [product("A")])
    assert run.status == S.SUCCEEDED
    assert customer.products.get().name == f"acme/ctx/{str(run.pk)[:4]}"


def test_a_batch_adapter_works_on_the_whole_batch(customer):
    cats = services.integration_create(customer=customer, slug="cats", target="crm.category")
    sync(cats, [{"code": "VIP", "name": "Very important"}, {"code": "NEW", "name": "New"}])
    contacts = services.integration_create(
        customer=customer, slug="contacts", target="crm.contact", adapter="test-category-names", max_error_rate=1
    )
    LOOKUPS.clear()
    run = sync(
        contacts,
        [
            contact(1, category_name="Very important"),
            "not an object",
            contact(2),
            contact(3, category_name="Nope"),
            contact(4, category_name="New"),
        ],
    )
    assert LOOKUPS == [3]  # called once for the batch, with its objects only
    assert run.counts == {"received": 5, "created": 3, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 2}
    errors = list(RecordError.objects.filter(run=run).order_by("index").values_list("index", "code", "key", "message"))
    assert errors[0][:2] == (1, "parse_error")
    assert errors[1] == (3, "invalid", 3, "adapter rejected the record: no category named 'Nope'")
    got = dict(Contact.objects.values_list("external_id", "category__code"))
    assert got == {1: "VIP", 2: None, 4: "NEW"}


def test_a_one_argument_batch_adapter_and_a_batch_that_fails_whole(customer):
    integration = services.integration_create(
        customer=customer, slug="up", target="catalog.product", adapter="test-batch-one-argument", max_error_rate=1
    )
    run = sync(integration, [product("A", name="chair"), {"sku": "B", "price": 1, "currency": "EUR"}])
    # the adapter raised KeyError on the record without a name: every record of the batch is rejected
    assert run.counts["failed"] == 2 and run.status == S.PARTIAL
    assert set(RecordError.objects.filter(run=run).values_list("code", flat=True)) == {"invalid"}
    run = sync(integration, [product("A", name="chair")])
    assert customer.products.get().name == "CHAIR"


@pytest.fixture
def finished():
    seen = []

    def receiver(sender, run, **kwargs):
        # sent after the commit: the end state is in the database for every connection to see
        stored = SyncRun.objects.filter(pk=run.pk).values_list("status", flat=True).get()
        seen.append((sender, run.pk, run.status, stored, connection.in_atomic_block))

    run_finished.connect(receiver)
    yield seen
    run_finished.disconnect(receiver)


def test_run_finished_is_sent_after_commit_for_every_end_state(integration, customer, finished):
    ok = sync(integration, [product(f"P{i}") for i in range(20)])
    failed = sync(integration, [product("P0", price=-1)])
    held = sync(integration, [product("P0")], mode="full")
    services.run_review(run=held, approve=True, user="t")
    cancelled, _ = services.run_create(integration=integration)
    services.run_cancel(run=cancelled)
    integration.max_error_rate = 1
    integration.save()
    partial = sync(integration, [product("P0"), product("X", price=-1)])
    expected = [
        (ok.pk, S.SUCCEEDED),
        (failed.pk, S.FAILED),
        (held.pk, S.NEEDS_REVIEW),
        (held.pk, S.SUCCEEDED),
        (cancelled.pk, S.CANCELLED),
        (partial.pk, S.PARTIAL),
    ]
    assert [(pk, status) for _, pk, status, _, _ in finished] == expected
    assert all(sender is SyncRun and status == stored and not atomic for sender, _, status, stored, atomic in finished)


def test_a_failing_receiver_does_not_disturb_the_run(integration, customer):
    def broken(sender, run, **kwargs):
        raise RuntimeError("host bug")

    run_finished.connect(broken)
    try:
        run = sync(integration, [product("A")])
    finally:
        run_finished.disconnect(broken)
    assert run.status == S.SUCCEEDED and customer.products.count() == 1
