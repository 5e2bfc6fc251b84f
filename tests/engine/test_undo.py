"""Undo (SPEC 13): the latest applied run of an integration, played backwards, as a run of its own."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product
from integrations import services
from integrations.exceptions import Conflict
from integrations.models import RunChange, SyncRun
from tests.support import product, sync

S = SyncRun.Status
FIELDS = ("sku", "name", "price", "currency", "quantity", "active", "attributes")


def table(customer):
    return {p["sku"]: p for p in Product.objects.filter(customer=customer).values(*FIELDS)}


def undo(run):
    u = services.run_undo(run=run, user="staff")
    u.refresh_from_db()
    return u


def test_undo_restores_exactly_and_walks_back(integration, customer):
    sync(integration, [product(f"K{i}", price=f"{i}.50", attributes={"i": i}) for i in range(5)])
    state1 = table(customer)
    r2 = sync(
        integration,
        [product("K0", price="0.50", attributes={"i": 0}), product("K1", price="8.00"), product("N1")],
        mode="full",
    )
    state2 = table(customer)
    r3 = sync(
        integration, {"records": [product("K1", name="Renamed", price="8.00")], "deletes": ["K0"]}, mode="incremental"
    )
    assert r3.status == S.SUCCEEDED
    u3 = undo(r3)
    assert u3.status == S.SUCCEEDED and u3.source == "undo" and u3.undoes_id == r3.pk
    assert (u3.created, u3.updated, u3.deleted) == (1, 1, 0)
    assert table(customer) == state2
    # undo again walks further back: r2 (full: 1 created, 1 updated, 3 deleted)
    assert services.undo_candidate(integration).pk == r2.pk
    u2 = undo(r2)
    assert (u2.created, u2.updated, u2.deleted) == (3, 1, 1)
    assert table(customer) == state1
    assert {(c.op, c.key) for c in RunChange.objects.filter(run=u2)} == {
        ("created", "K2"),
        ("created", "K3"),
        ("created", "K4"),
        ("updated", "K1"),
        ("deleted", "N1"),
    }
    with pytest.raises(Conflict, match="undone already"):
        services.run_undo(run=r3)


def test_conflict_rows_left_as_the_later_writer_left_them(integration, customer):
    sync(integration, [product("A"), product("B"), product("C")])
    r2 = sync(integration, [product("A", price="1.00"), product("B", price="2.00"), product("N")], mode="incremental")
    Product.objects.filter(sku="A").update(price=Decimal("5.55"))  # a hand edit after the run
    Product.objects.filter(sku="N").update(name="edited")
    u = undo(r2)
    assert u.status == S.PARTIAL and "2 row(s) changed since" in u.message
    rows = table(customer)
    assert rows["A"]["price"] == Decimal("5.55") and rows["N"]["name"] == "edited"  # left alone
    assert rows["B"]["price"] == Decimal("9.99")  # reverted
    assert {c.key for c in RunChange.objects.filter(run=u, conflict=True)} == {"A", "N"}


def test_nothing_to_undo(integration, customer):
    first = sync(integration, [product("A")])
    dry = sync(integration, [product("A", price="1.00")], dry_run=True)
    failed = sync(integration, [{"sku": "X"}])
    for run, why in ((dry, "dry run"), (failed, "applied nothing")):
        with pytest.raises(Conflict, match=why):
            services.run_undo(run=run)
    second = sync(integration, [product("B")], mode="incremental")
    with pytest.raises(Conflict, match=f"only the latest applied run.*{second.pk}"):
        services.run_undo(run=first)
    SyncRun.objects.filter(pk=second.pk).update(changes_purged_at=second.finished_at)
    second.refresh_from_db()
    with pytest.raises(Conflict, match="can no longer be undone"):
        services.run_undo(run=second)


def test_undo_waits_behind_a_held_run(integration, customer):
    sync(integration, [product(f"K{i}") for i in range(20)])
    r2 = sync(integration, [product("K0", price="1.00")], mode="incremental")
    held = sync(integration, [product("K0")], mode="full")
    assert held.status == S.NEEDS_REVIEW
    u = undo(r2)
    assert u.status == S.QUEUED  # rule 6: it waits its turn
    services.run_review(run=held, approve=False)
    u.refresh_from_db()
    assert u.status == S.SUCCEEDED and Product.objects.get(sku="K0").price == Decimal("9.99")


def test_command_previews_then_undoes(integration, customer, capsys):
    sync(integration, [product("A")])
    r2 = sync(integration, [product("A", price="1.00"), product("B")], mode="incremental")
    with pytest.raises(CommandError, match="--yes"):
        call_command("undo_run", str(r2.pk))
    assert "revert 1 updated row(s) and delete 1 created row(s)" in capsys.readouterr().out
    assert Product.objects.filter(sku="B").exists()
    call_command("undo_run", str(r2.pk)[:8], "--yes")
    assert "succeeded" in capsys.readouterr().out
    assert not Product.objects.filter(sku="B").exists() and Product.objects.get(sku="A").price == Decimal("9.99")
    with pytest.raises(CommandError, match="cannot be undone"):
        call_command("undo_run", str(r2.pk), "--yes")


# --- the admin -------------------------------------------------------------------------------------


def test_admin_run_page_changes_and_undo_with_preview(integration, customer, client):
    from django.urls import reverse

    from tests.support import scenarios

    client.force_login(scenarios.make_superuser())
    sync(integration, [product("A"), product("B")])
    r2 = sync(integration, [product("A", price="1.00"), product("N")], mode="full")
    page = client.get(reverse("admin:integrations_syncrun_change", args=[r2.pk])).content.decode()
    assert "1 created" in page and "1 updated" in page and "1 deleted" in page
    assert f"?run={r2.pk}&amp;op__exact=updated" in page and "can be undone" in page
    changes = client.get(reverse("admin:integrations_runchange_changelist") + f"?run={r2.pk}&op__exact=updated")
    assert changes.status_code == 200 and "price: 9.99 → 1.00" in changes.content.decode()
    preview = client.get(reverse("admin:integrations_syncrun_undo", args=[r2.pk])).content.decode()
    assert (
        "restore 1 deleted row" in preview
        and "revert 1 updated row" in preview
        and Product.objects.filter(sku="N").exists()
    )
    response = client.post(reverse("admin:integrations_syncrun_undo", args=[r2.pk]))
    assert response.status_code == 302
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B"]
    undo_run = SyncRun.objects.get(source="undo")
    assert undo_run.status == S.SUCCEEDED and undo_run.reviewed_by
    page = client.get(reverse("admin:integrations_syncrun_change", args=[r2.pk])).content.decode()
    assert "undone by run" in page


def test_journal_retention_purges_in_chunks_and_ends_undo(integration, customer, settings, capsys):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from integrations.retention import purge_sync_data

    settings.INTEGRATIONS_PURGE_CHUNK = 2
    with time_machine.travel(timezone.now() - timedelta(days=40), tick=True):
        old = sync(integration, [product(f"K{i}") for i in range(5)])
    young = sync(integration, [product("Y")], mode="incremental")
    dry = purge_sync_data(dry_run=True)
    assert (dry["journals_expired"], dry["changes_deleted"]) == (1, 5)
    report = purge_sync_data()
    assert (report["journals_expired"], report["changes_deleted"]) == (1, 5)
    old.refresh_from_db()
    assert old.changes_purged_at and not RunChange.objects.filter(run=old).exists()
    assert RunChange.objects.filter(run=young).count() == 1  # kept
    undo(young)
    with pytest.raises(CommandError, match="journal of changes is gone"):
        call_command("undo_run", str(old.pk))
    settings.INTEGRATIONS_CHANGES_RETENTION_DAYS = 60
    assert purge_sync_data()["journals_expired"] == 0
