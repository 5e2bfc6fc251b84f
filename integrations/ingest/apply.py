"""The apply of a run (SPEC section 3): duplicates, error policy, deletion guard, upsert, deletes.

`plan_and_apply` runs inside the run's one transaction, after `lock_owner_rows`; `refresh_statistics`
runs before that transaction, never inside it. It decides with set-based queries over the
staging tables, then writes: one INSERT ... SELECT ... ON CONFLICT DO UPDATE that skips unchanged
rows, built once for PostgreSQL and SQLite (their differences are spelled in one place each);
deletions are one anti-join DELETE on both.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.db.models import PROTECT, RESTRICT, Count, Exists, OuterRef, Q, Sum
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

from ..conf import conf
from ..models import RecordError, SyncBatch, SyncRun
from ..targets import Target
from . import journal, parallel, staging
from .deletions import DeletionPlan
from .validate import duplicate_message, unknown_reference

Status = SyncRun.Status
log = logging.getLogger("integrations")


@dataclass
class Outcome:
    status: str
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    message: str = ""


def plan_and_apply(run: SyncRun, target: Target) -> Outcome:
    integration = run.integration
    owner_id = integration.customer_id
    mark_cross_batch_duplicates(run, target)
    # unknown references are failed records, counted by the error policy like any other
    mark_unknown_references(run, target, owner_id)

    received = SyncBatch.objects.filter(run=run).aggregate(n=Sum("received"))["n"] or 0
    failed = RecordError.objects.filter(run=run).count()

    # rule 3: the error policy comes first; a failed run changes nothing
    over = error_policy_failure(failed, received, integration.max_error_rate)
    if over:
        return Outcome(Status.FAILED, received=received, failed=failed, message=over)

    plan = DeletionPlan.of(run, target, owner_id)  # rule 4: what the run deletes
    plan.read_ids()
    notes: list[str] = []
    if plan.keyless:
        notes.append(f"snapshot deletion skipped: {plan.keyless} failed record(s) had no readable key")

    doomed = plan.doomed()

    # a row that another table still references through PROTECT/RESTRICT cannot go: then the run
    # cannot be applied as sent (SPEC 2), whatever staff would decide about the guard
    if doomed is not None:
        blockers = protected_references(target, doomed)
        if blockers:
            return Outcome(
                Status.FAILED,
                received=received,
                failed=failed,
                message=(
                    f"this run would delete rows that are still referenced: {'; '.join(blockers)}. Nothing was applied."
                ),
            )

    # rule 5: the deletion guard
    held = plan.guard_reason(run)
    if held:
        created, updated, unchanged = diff_counts(run, target, owner_id)
        # SPEC 13: what approval would change, as a dry run's journal (approval replaces it)
        journal.record(run, target, owner_id, doomed)
        return Outcome(
            Status.NEEDS_REVIEW,
            received=received,
            created=created,
            updated=updated,
            unchanged=unchanged,
            deleted=plan.count(),
            failed=failed,
            message=held,
        )

    # SPEC 13: what the writes below change (or, for a dry run, would), from the same plan
    fold = journal.folds_into_upsert(run)
    fold_deletes = doomed is not None and journal.folds_deletes(run, target)
    counts = journal.record(run, target, owner_id, None if fold_deletes else doomed, upserts=not fold)
    if run.dry_run:
        created, updated, unchanged = diff_counts(run, target, owner_id)
        deleted = plan.count()
        notes.insert(0, "dry run: nothing was applied")
    else:
        # the staged records, read from the table: a held run applied on approval was marked
        # (duplicates, unknown references) by its first pass, so the batches' counts do not say it
        records = staging.staged(target, run.pk).count()
        writes = records_to_write(run, target, owner_id, plan, records) if fold else None
        if writes == []:  # every staged record is as its row is: nothing to write, nothing to journal
            created = updated = 0
        else:
            created, updated = upsert(
                run, target, owner_id, journal_run=run if fold else None, counts=counts, only=writes
            )
        unchanged = records - created - updated
        deleted = journal.delete_journaled(run, target, plan) if fold_deletes else plan.delete()

    status = Status.PARTIAL if failed else Status.SUCCEEDED
    if failed:
        notes.append(f"{failed} record(s) failed and were skipped (see errors)")
    summary = (
        f"{received} received: {created} created, {updated} updated, {unchanged} unchanged, "
        f"{deleted} deleted, {failed} failed."
    )
    message = " ".join([summary] + [n[0].upper() + n[1:] + "." for n in notes])
    return Outcome(status, received, created, updated, unchanged, deleted, failed, message)


def error_policy_failure(failed: int, received: int, max_error_rate: float) -> str | None:
    """Rule 3, the error policy: the message of a run whose failed records are above the
    integration's `max_error_rate` (equal is within it), or None when the run may be applied."""
    rate = failed / received if received else 0.0
    if rate <= max_error_rate:
        return None
    return (
        f"{failed} of {received} records failed ({rate:.1%}), above the integration's "
        f"max_error_rate of {max_error_rate:.1%}: nothing was applied."
    )


def protected_references(target: Target, doomed) -> list[str]:
    """Which tables still reference rows of `doomed` through a PROTECT or RESTRICT foreign key:
    one count per such foreign key (set-based), described for the run's message."""
    found = []
    for rel in target.model._meta.related_objects:
        if rel.many_to_many or getattr(rel, "on_delete", None) not in (PROTECT, RESTRICT):
            continue
        field = rel.field
        keys = doomed.values(field.target_field.attname)
        n = rel.related_model._base_manager.filter(**{f"{field.attname}__in": keys}).count()
        if n:
            found.append(
                f"{n} {rel.related_model._meta.label} row(s) reference them through "
                f"{rel.related_model._meta.label}.{field.name} (on_delete={rel.on_delete.__name__})"
            )
    return found


def mark_unknown_references(run: SyncRun, target: Target, owner_id) -> int:
    """References resolve within the owner's rows only (SPEC 2): a staged record whose reference
    names no row of the referenced target for this owner becomes an `invalid` record error (and
    its staging row a failed record's key). One query per reference; rows only when some fail."""
    if not target.references:
        return 0
    staged = staging.staged(target, run.pk)
    bad: dict[int, tuple] = {}
    for name, target_name in target.references.items():
        ref = target.referenced(name)
        known = Exists(ref.owner_rows(owner_id).filter(**{ref.keys[0]: OuterRef(name)}))
        for row in staged.filter(**{f"{name}__isnull": False}).exclude(known):
            bad.setdefault(row.pk, (row, {}))[1][name] = [unknown_reference(target_name, getattr(row, name))]
    if not bad:
        return 0
    RecordError.objects.bulk_create(
        (
            RecordError(
                run=run,
                seq=row.seq,
                index=row.index,
                key=target.key_json(staging.row_key(target, row)),
                code=RecordError.Code.INVALID,
                message=f"invalid field(s): {', '.join(fields)}",
                fields=fields,
                record=staging.row_values(target, row),
            )
            for row, fields in sorted(bad.values(), key=lambda item: (item[0].seq, item[0].index))
        ),
        batch_size=1000,
    )
    staged.filter(pk__in=list(bad)).update(row_kind=staging.FAILED_KEY)
    return len(bad)


def refresh_statistics(target: Target) -> None:
    """PostgreSQL plans the set-based statements from table statistics; the staging table has just
    grown by the whole run, and a stale estimate turns the anti-joins into nested loops
    (PERFORMANCE.md lesson 3). The staging table, ours, is analysed from a sample of 3,000 rows
    (statistics target 10) instead of 30,000: enough for the run's share of it, its keys' spread and
    its rows' width (measured at 1,000,000 staged rows: 0.2 s -> 0.01 s). The target, the customer's
    table, at the server's statistics target, so its other queries keep the plans they had, and
    only its owner and key columns once every column has statistics (0.23 -> 0.12 s): a column
    never analysed leaves the planner guessing the rows' width, and with the staging table's widths
    guessed the apply's join hashed the wrong side (1.2 -> 1.8 s).

    Called before the run's transaction, never inside it: ANALYZE holds a lock on the table that
    every other ANALYZE of it waits for, until its transaction ends; inside an apply that was the
    whole apply, and another customer's apply waited on it. Here each table is its own short
    transaction, and one that would wait more than a second is skipped (another run is analysing
    the same table at this moment: its statistics serve both)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    q = connection.ops.quote_name
    table = target.model._meta.db_table
    columns = [target.owner_column, *target.key_columns]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = "
            "current_schema() AND s.tablename = %s AND s.attname = a.attname)",
            [q(table), table],
        )
        unanalysed = cursor.fetchone()[0]
    statements = (  # (table, statistics target or the server's, the columns or all)
        (staging.stage_model(target)._meta.db_table, 10, ""),
        (table, None, "" if unanalysed else f" ({', '.join(map(q, columns))})"),
    )
    for name, sample, column_list in statements:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
                if sample:
                    cursor.execute(f"SET LOCAL default_statistics_target = {int(sample)}")
                cursor.execute(f"ANALYZE {q(name)}{column_list}")
        except OperationalError as exc:
            log.info("ANALYZE %s skipped: %s", name, exc)


WORK_MEM = re.compile(r"^\s*\d+\s*(kB|MB|GB|TB)?\s*$")  # PostgreSQL's memory units


def set_work_mem() -> None:
    """Inside a run's transaction (PostgreSQL): the memory its set-based statements may hash and sort
    in (INTEGRATIONS_APPLY_WORK_MEM, for this transaction only). With the server's default (4 MB),
    the join of 1,000,000 staged records with the owner's rows splits into 32 batches written to disk
    and read back (PERFORMANCE.md lesson 3's plans, one step further)."""
    value = conf.APPLY_WORK_MEM
    if connection.vendor != "postgresql" or not value or not WORK_MEM.match(value):
        return  # an unparsable value is reported by the system check integrations.E006
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [value.replace(" ", "")])


def lock_owner_rows(target: Target, owner_id) -> None:
    """Inside the run's transaction: no other apply of this customer's rows of this target runs at
    the same time (rule 4: a full snapshot is the customer's whole set of rows, whichever integration
    wrote them; two applies deciding deletions on one set of rows at once would each miss the other's
    writes). The narrowest lock that does it, a PostgreSQL advisory lock on (target, customer) until
    commit: other customers, other targets and the customer's other calls (completing a run of
    another integration) never wait on it. SQLite runs one writing transaction at a time anyway."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(f"integrations.apply|{target.name}|{owner_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def mark_cross_batch_duplicates(run: SyncRun, target: Target) -> int:
    """Rule 2's duplicate_key across batches (within a batch, validation found them already):
    of all records of the run with one key, valid or not, the first keeps it. A later valid
    record becomes a duplicate_key error and its staging row a failed record's key."""
    if _spans_apart(run):
        return 0  # no two batches' spans of keys overlap: no key can be staged twice
    every = staging.staged(target, run.pk, None)
    if not every.values(*target.keys).alias(n=Count("*")).filter(n__gt=1).exists():
        # the usual case: no key staged twice, whatever its kind. One aggregate, read from the
        # staging index (run, key) alone on SQLite, without the rows' kinds (a third cheaper)
        return 0
    keyed = every.filter(row_kind__in=[staging.RECORD, staging.FAILED_KEY])
    if not keyed.values(*target.keys).alias(n=Count("id")).filter(n__gt=1).exists():
        return 0  # a listed delete of a key the run also sends: not a duplicate
    earlier = keyed.filter(**staging.same_key(target)).filter(
        Q(seq__lt=OuterRef("seq")) | Q(seq=OuterRef("seq"), index__lt=OuterRef("index"))
    )
    losers = list(staging.staged(target, run.pk).filter(Exists(earlier)).order_by("seq", "index"))
    if not losers:
        return 0
    RecordError.objects.bulk_create(
        (
            RecordError(
                run=run,
                seq=r.seq,
                index=r.index,
                key=target.key_json(key),
                code=RecordError.Code.DUPLICATE_KEY,
                message=duplicate_message(target, key),
                record=staging.row_values(target, r),
            )
            for r, key in ((r, staging.row_key(target, r)) for r in losers)
        ),
        batch_size=1000,
    )
    # still staged, as a failed record's key: the run's count of staged rows stays as validated
    staging.staged(target, run.pk).filter(pk__in=[r.pk for r in losers]).update(row_kind=staging.FAILED_KEY)
    return len(losers)


def _spans_apart(run: SyncRun) -> bool:
    """Whether the run's batches staged keys in spans that do not overlap (Target.key_span), so no
    key is staged twice: the usual case of a snapshot sent in the order of its keys, decided without
    reading the staged rows (the search below reads every one: 0.35 s per 1,000,000 on PostgreSQL).
    A batch without a span (its keys have no exact order, or it was validated before spans were
    kept) leaves the search to the database."""
    spans = list(SyncBatch.objects.filter(run=run, staged__gt=0).values_list("key_span", flat=True))
    if any(span is None for span in spans):
        return False
    try:
        spans.sort()
        return all(before[1] < after[0] for before, after in zip(spans, spans[1:]))
    except TypeError:  # spans of keys of different types (not one target's): no order
        return False


# --- the diff and the upsert: one builder of the SQL, two dialects where they differ -------------


def diff_counts(run: SyncRun, target: Target, owner_id) -> tuple[int, int, int]:
    """(created, updated, unchanged) the run would produce, without writing: one join."""
    source, source_params, cols = _source(target, run.pk, owner_id)
    differs, same = _compare(target, cols)
    q = connection.ops.quote_name
    pk = q(target.model._meta.pk.column)
    sql = (
        f"WITH src AS ({source}) "
        f"SELECT count(*) FILTER (WHERE t.{pk} IS NULL), "
        f"count(*) FILTER (WHERE t.{pk} IS NOT NULL AND {differs}), "
        f"count(*) FILTER (WHERE t.{pk} IS NOT NULL AND {same}) "
        f"FROM src LEFT JOIN {q(target.model._meta.db_table)} t ON {_join(target)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*source_params, owner_id])
        return tuple(v or 0 for v in cursor.fetchone())


def records_to_write(run: SyncRun, target: Target, owner_id, plan: DeletionPlan, staged: int) -> list | None:
    """The staging ids of the run's records that are new or differ from their row, where asking is
    worth it; None: the upsert compares every record itself (as it always does on SQLite).

    On PostgreSQL a statement that writes runs in one process: the upsert's comparison of 1,000,000
    records took 1.6 s, the same comparison as a read (parallel.ids) 1.1 s. With no id the upsert
    is skipped; with a few it reads only those records, one by one (10,000 of 1,000,000: 0.5 s,
    not 1.6 s plus their writes). It is asked only where few writes are likely: a full snapshot
    none of whose records can be new (the owner's rows less those it deletes are as many as its
    records), the shape of a re-sync. A snapshot with new records (one that grows, as most that
    change do) is upserted without asking. The ids are used only up to a twentieth of the records
    (or 1,000): beyond, reading records one by one costs more than the upsert's one join (150,000
    of 1,000,000: 7.8 s, not 6.5 s)."""
    if plan.snapshot_ids is None or staged != plan.current - len(plan.snapshot_ids):
        return None  # read_ids read nothing (SQLite, no snapshot, too many rows), or records are new
    source, source_params, cols = _source(target, run.pk, owner_id, staged_id=True)
    differs, _ = _compare(target, cols)
    q = connection.ops.quote_name
    return parallel.ids(
        f"WITH src AS ({source}) SELECT src.{STAGED_ID} FROM src "
        f"LEFT JOIN {q(target.model._meta.db_table)} t ON {_join(target)} "
        f"WHERE t.{q(target.model._meta.pk.column)} IS NULL OR {differs}",
        [*source_params, owner_id],
        limit=max(staged // 20, 1000),
    )


def upsert(
    run: SyncRun,
    target: Target,
    owner_id,
    journal_run: SyncRun | None = None,
    counts: tuple[int, int] | None = None,
    only: list | None = None,
) -> tuple[int, int]:
    """Write new and changed records; unchanged rows are not touched. (created, updated).

    One INSERT ... SELECT ... ON CONFLICT DO UPDATE of the staged records that are new or differ
    (an anti-join prefilter, so an unchanged row is never written). PostgreSQL counts what it
    wrote through RETURNING in the same statement; SQLite cannot put an INSERT in a WITH, so it
    counts with the same join first (its one writer holds the database: nothing changes between).
    With `journal_run` (PostgreSQL), the same statement journals what it writes (SPEC 13): the
    prefilter, computed once, feeds the INSERT and the journal's INSERT. On SQLite, `counts`
    (created, updated), when the journal has just compared the same rows the same way
    (journal.record), stands for that first join. With `only` (records_to_write), the staged
    records read are those of these staging ids."""
    source, source_params, cols = _source(target, run.pk, owner_id, only=only)
    differs, _ = _compare(target, cols)
    q = connection.ops.quote_name
    table = q(target.model._meta.db_table)
    owner, pk = q(target.owner_column), q(target.model._meta.pk.column)
    keys = [q(c) for c in target.key_columns]
    other_cols, other_exprs, other_params = insert_defaults(target)
    postgres = connection.vendor == "postgresql"
    insert_cols = ", ".join([owner, *keys] + [q(c) for c in cols] + [q(c) for c in other_cols])
    sets = [f"{q(c)} = EXCLUDED.{q(c)}" for c in cols]
    set_params = []
    if target.touch_field:
        now, now_params = _now(target.model._meta.get_field(target.touch_field))
        sets.append(f"{q(target.column(target.touch_field))} = {now}")
        set_params = now_params
    # a key-only target has nothing to update: an existing row is unchanged by definition
    conflict = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    if postgres:
        select_cols = ", ".join(["%s", *keys] + [q(c) for c in cols] + other_exprs)

        def run_upsert(updates: bool) -> tuple[int, int]:
            extra, returning, journaled, journal_params = "", "", "", []
            if journal_run is not None:
                extra, returning, cte = journal.pg_upsert_journal(target, cols, "changed", "up", updates=updates)
                extra = f", {extra}" if extra else ""
                journaled, journal_params = f", j AS ({cte})", [journal_run.pk] * (2 if updates else 1)
            sql = (
                f"WITH src AS ({source}), "
                f"changed AS (SELECT src.*{extra} FROM src LEFT JOIN {table} t ON {_join(target)} "
                f"  WHERE t.{pk} IS NULL OR {differs}), "
                f"up AS (INSERT INTO {table} ({insert_cols}) SELECT {select_cols} FROM changed "
                f"  ON CONFLICT ({owner}, {', '.join(keys)}) {conflict} RETURNING (xmax = 0) AS inserted{returning})"
                f"{journaled} SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [*source_params, owner_id, owner_id, *other_params, *set_params, *journal_params])
                return cursor.fetchone()

        if journal_run is None or _owner_has_rows(target, owner_id):
            return run_upsert(updates=True)
        # a first load: nothing to update, so the journal reads only what the INSERT returns and the
        # prefilter is not kept for it (1,000,000 rows written to a temporary file and read back, a
        # second of a first load's journal). Should a row of the owner appear between the check and
        # the statement (a hand edit), the statement updated it: it is undone and run in full.
        try:
            with transaction.atomic():
                created, updated = run_upsert(updates=False)
                if updated:
                    raise _RowsAppeared
            return created, updated
        except _RowsAppeared:
            return run_upsert(updates=True)
    created, updated = counts if counts is not None else diff_counts(run, target, owner_id)[:2]
    if not created and not updated:
        return 0, 0
    # no prefilter join here: a SELECT that reads the table it inserts into is materialised first;
    # the upsert's own WHERE skips the unchanged rows instead
    if sets:
        changed, _ = _compare(target, cols, old=table, new="excluded")
        conflict += f" WHERE {changed}"
    select_cols = ", ".join(["%s", *keys] + [q(c) for c in cols] + other_exprs)
    # "WHERE true" settles SQLite's parsing ambiguity of "ON" before ON CONFLICT
    sql = (
        f"WITH src AS ({source}) "
        f"INSERT INTO {table} ({insert_cols}) SELECT {select_cols} FROM src WHERE true "
        f"ON CONFLICT ({owner}, {', '.join(keys)}) {conflict}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*source_params, owner_id, *other_params, *set_params])
    return created, updated


class _RowsAppeared(Exception):
    """The owner had no rows when the upsert began, and had some when it ran (see upsert)."""


def _owner_has_rows(target: Target, owner_id) -> bool:
    """Has the owner any row of the target (whatever the model's default manager hides)? Ordered by
    the key, so the plan is the unique index of (owner, key), read from its first entry: without
    the ORDER BY, PostgreSQL took an owner with many rows for one a scan of the table finds at
    once, and the scan read every other owner's rows first (0.1 s, behind 1,000,000 of them)."""
    q = connection.ops.quote_name
    keys = ", ".join(map(q, target.key_columns))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {q(target.model._meta.db_table)} WHERE {q(target.owner_column)} = %s "
            f"ORDER BY {keys} LIMIT 1",
            [owner_id],
        )
        return cursor.fetchone() is not None


STAGED_ID = '"_staged_id"'  # the staging row's id, in `_source` with staged_id


def _source(
    target: Target, run_id, owner_id, *, staged_id: bool = False, only: list | None = None
) -> tuple[str, list, list[str]]:
    """The staged records of a run as typed rows (key columns first, under the model's column
    names, a reference resolved to the referenced row's id by a join within the owner's rows),
    its parameters, and the target's non-key column names. With `staged_id`, each row's staging
    id too (as STAGED_ID); with `only`, the records of these staging ids alone."""
    meta = target.model._meta
    stage = staging.stage_model(target)._meta
    q = connection.ops.quote_name
    keys = [meta.get_field(name).column for name in target.keys]
    cols = [meta.get_field(name).column for name in target.fields]
    defaults = [meta.get_field(name).column for name in target.staged_defaults]
    select, joins, params = [], [], []
    for name, col in zip((*target.keys, *target.fields, *target.staged_defaults), (*keys, *cols, *defaults)):
        if name in target.references:
            ref, alias = target.referenced(name), f"r{len(joins)}"
            ref_meta = ref.model._meta
            to = meta.get_field(name).target_field.column
            select.append(f"{alias}.{q(to)} AS {q(col)}")
            joins.append(
                f" LEFT JOIN {q(ref_meta.db_table)} {alias} ON {alias}.{q(ref.owner_column)} = %s"
                f" AND {alias}.{q(ref_meta.get_field(ref.keys[0]).column)} = s.{q(stage.get_field(name).column)}"
            )
            params.append(owner_id)
        else:
            select.append(f"s.{q(stage.get_field(name).column)} AS {q(col)}")
    if staged_id:
        select.append(f"s.{q(stage.pk.column)} AS {STAGED_ID}")
    params.append(stage.get_field("run_id").get_db_prep_value(run_id, connection))
    where = f"s.run_id = %s AND s.row_kind = '{staging.RECORD}'"
    if only is not None:  # unnest: planned as a few rows (each looked up), whatever the list's length
        where += f" AND s.{q(stage.pk.column)} IN (SELECT unnest(%s::{stage.pk.db_type(connection)}[]))"
        params.append(only)
    sql = f"SELECT {', '.join(select)} FROM {q(stage.db_table)} s{''.join(joins)} WHERE {where}"
    return sql, params, cols


def _compare(target: Target, cols: list[str], old: str = "t", new: str = "src") -> tuple[str, str]:
    """SQL conditions: the target row (`old`) differs from the staged record (`new`), and it does not.

    SQLite stores JSON as text: two texts of one value may differ in key order or number
    formatting, so where the texts differ a JSON column is compared by value (json_same)."""
    if not cols:  # a key-only target: an existing row is unchanged by definition
        return "false", "true"
    q = connection.ops.quote_name
    if connection.vendor == "postgresql":
        t_cols, s_cols = ", ".join(f"t.{q(c)}" for c in cols), ", ".join(f"src.{q(c)}" for c in cols)
        return f"({t_cols}) IS DISTINCT FROM ({s_cols})", f"({t_cols}) IS NOT DISTINCT FROM ({s_cols})"
    json_cols = {
        target.column(name)
        for name in target.fields
        if target.model._meta.get_field(name).get_internal_type() == "JSONField"
    }
    if json_cols:
        _register_json_same()
    parts = []
    for c in cols:
        part = f"{old}.{q(c)} IS NOT {new}.{q(c)}"
        if c in json_cols:
            part = f"({part} AND NOT coalesce(integrations_json_same({old}.{q(c)}, {new}.{q(c)}), 0))"
        parts.append(part)
    differs = " OR ".join(parts)
    return f"({differs})", f"NOT ({differs})"


def _json_same(a, b) -> int:
    if a is None or b is None:
        return int(a is b)
    try:
        return int(json.loads(a) == json.loads(b))
    except ValueError:
        return 0


def _register_json_same() -> None:
    """The SQLite function comparing two JSON texts by value (as the ORM's Python values compare)."""
    connection.ensure_connection()
    connection.connection.create_function("integrations_json_same", 2, _json_same, deterministic=True)


def _now(field) -> tuple[str, list]:
    """SQL for the current time in a date/time column: now() on PostgreSQL, else a parameter."""
    if connection.vendor == "postgresql":
        return "now()", []
    return "%s", [field.get_db_prep_save(timezone.now(), connection)]


def _join(target: Target) -> str:
    """The join condition of a target row and a staged record: same owner (a parameter), same key."""
    q = connection.ops.quote_name
    return " AND ".join([f"t.{q(target.owner_column)} = %s"] + [f"t.{q(c)} = src.{q(c)}" for c in target.key_columns])


def insert_defaults(target: Target) -> tuple[list[str], list[str], list]:
    """The model's other columns on insert (SPEC 2): (columns, SQL expressions, parameters).

    A column with a `db_default` is left out, so the database supplies it; `auto_now(_add)` is
    now(); a constant Python `default` goes in as a parameter, a callable one was staged with
    each record (Target.staged_defaults). The update never names these columns, so an existing
    row keeps its values."""
    meta = target.model._meta
    synced = {target.owner_field, *target.keys, *target.fields, *target.staged_defaults}
    columns = [meta.get_field(name).column for name in target.staged_defaults]
    exprs = [connection.ops.quote_name(column) for column in columns]
    params = []
    for field in meta.concrete_fields:
        if field.primary_key or field.name in synced or field.generated:
            continue
        if getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            columns.append(field.column)
            now, now_params = _now(field)
            exprs.append(now)
            params += now_params
        elif field.has_default():
            columns.append(field.column)
            exprs.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    return columns, exprs, params
