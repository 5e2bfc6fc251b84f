"""The apply of a run (SPEC section 3): duplicates, error policy, deletion guard, upsert, deletes.

`plan_and_apply` runs inside the run's one transaction, after `lock_owner_rows`; `refresh_statistics`
runs before that transaction, never inside it. It decides with set-based queries over the
staging tables, then writes: on PostgreSQL one INSERT ... SELECT ... ON CONFLICT DO UPDATE that
skips unchanged rows (IS DISTINCT FROM), elsewhere the ORM's bulk upsert; deletions are one
anti-join DELETE on both.
"""

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Sum
from django.utils import timezone

from ..models import RecordError, StagedDelete, SyncBatch, SyncRun
from ..targets import Target
from . import staging
from .validate import DUPLICATE_KEY

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

    received = SyncBatch.objects.filter(run=run).aggregate(n=Sum("received"))["n"] or 0
    failed = RecordError.objects.filter(run=run).count()

    # rule 3: the error policy comes first; a failed run changes nothing
    rate = failed / received if received else 0.0
    if rate > integration.max_error_rate:
        return Outcome(
            Status.FAILED, received=received, failed=failed,
            message=(f"{failed} of {received} records failed ({rate:.1%}), above the integration's "
                     f"max_error_rate of {integration.max_error_rate:.1%}: nothing was applied."),
        )

    staged = staging.staged(target, run.pk)
    rows = target.owner_rows(owner_id)
    key = target.key_field
    in_run = Exists(staged.filter(key=OuterRef(key)))
    listed = Exists(StagedDelete.objects.filter(run=run, key=OuterRef(key)))
    # a record of the run wins over a listed delete of the same key
    explicit = rows.filter(listed).exclude(in_run)

    notes: list[str] = []
    snapshot = rows.none()
    if run.mode == "full":
        keyless = RecordError.objects.filter(run=run, key__isnull=True).count()
        if keyless:
            notes.append(f"snapshot deletion skipped: {keyless} failed record(s) had no readable key")
        else:
            # rule 4: the snapshot's keys include those of failed records (failed-key protection)
            failed_key = Exists(RecordError.objects.filter(run=run, key=OuterRef(key)))
            snapshot = rows.exclude(in_run).exclude(failed_key).exclude(listed)

    snapshot_n = snapshot.count() if run.mode == "full" and not notes else 0
    explicit_n = explicit.count()

    # rule 5: the deletion guard
    if snapshot_n and not run.guard_waived:
        current = rows.count()
        over_share = snapshot_n * 100 > integration.max_deletes_percent * current and snapshot_n > 10
        if over_share or snapshot_n == current:
            created, updated, unchanged = diff_counts(run, target, owner_id)
            share = snapshot_n / current if current else 1
            why = "every row" if snapshot_n == current else f"{share:.1%} of them, above max_deletes_percent {integration.max_deletes_percent:g}%"
            return Outcome(
                Status.NEEDS_REVIEW, received=received, created=created, updated=updated, unchanged=unchanged,
                deleted=snapshot_n + explicit_n, failed=failed,
                message=(f"held for review: this full snapshot would delete {snapshot_n} of the {current} current "
                         f"rows ({why}). Approve to apply it, or reject it."),
            )

    if run.dry_run:
        created, updated, unchanged = diff_counts(run, target, owner_id)
        deleted = snapshot_n + explicit_n
        notes.insert(0, "dry run: nothing was applied")
    else:
        created, updated = upsert(run, target, owner_id)
        unchanged = staged.count() - created - updated
        deleted = explicit.delete()[0] if explicit_n else 0
        if snapshot_n:
            deleted += snapshot.delete()[0]

    status = Status.PARTIAL if failed else Status.SUCCEEDED
    if failed:
        notes.append(f"{failed} record(s) failed and were skipped (see errors)")
    summary = (f"{received} received: {created} created, {updated} updated, {unchanged} unchanged, "
               f"{deleted} deleted, {failed} failed.")
    message = " ".join([summary] + [n[0].upper() + n[1:] + "." for n in notes])
    return Outcome(status, received, created, updated, unchanged, deleted, failed, message)


def refresh_statistics(target: Target) -> None:
    """PostgreSQL plans the set-based statements from table statistics; the staging table has just
    grown by the whole run, and a stale estimate turns the anti-joins into nested loops
    (PERFORMANCE.md lesson 3). ANALYZE samples a bounded number of rows, so this stays cheap.

    Called before the run's transaction, never inside it: ANALYZE holds a lock on the table that
    every other ANALYZE of it waits for, until its transaction ends; inside an apply that was the
    whole apply, and another customer's apply waited on it. Here each table is its own short
    transaction, and one that would wait more than a second is skipped (another run is analysing
    the same table at this moment: its statistics serve both)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    q = connection.ops.quote_name
    for table in (staging.stage_model(target)._meta.db_table, target.model._meta.db_table):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
                cursor.execute(f"ANALYZE {q(table)}")
        except OperationalError as exc:
            log.info("ANALYZE %s skipped: %s", table, exc)


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
    of all records of the run with one key, valid or not, the first keeps it."""
    staged = staging.staged(target, run.pk)
    dup_keys = set(
        staged.values("key").alias(n=Count("id")).filter(n__gt=1).values_list("key", flat=True)
    )
    dup_keys |= set(
        RecordError.objects.filter(run=run, key__isnull=False).filter(Exists(staged.filter(key=OuterRef("key"))))
        .values_list("key", flat=True)
    )
    if not dup_keys:
        return 0
    first_seen: dict[str, tuple[int, int]] = {}
    for k, seq, index in RecordError.objects.filter(run=run, key__in=dup_keys).values_list("key", "seq", "index"):
        first_seen[k] = min(first_seen.get(k, (seq, index)), (seq, index))
    losers: list = []
    by_key: dict[str, list] = defaultdict(list)
    for rec in staged.filter(key__in=dup_keys).order_by("seq", "index"):
        by_key[rec.key].append(rec)
    for k, recs in by_key.items():
        earliest_error = first_seen.get(k)
        for position, rec in enumerate(recs):
            first = position == 0 and (earliest_error is None or (rec.seq, rec.index) < earliest_error)
            if not first:
                losers.append(rec)
    RecordError.objects.bulk_create(
        RecordError(run=run, seq=r.seq, index=r.index, key=r.key, code=DUPLICATE_KEY,
                    message=f"key {r.key!r} appeared earlier in this run; the first one stays",
                    record=staging.row_values(target, r))
        for r in losers
    )
    staged.filter(pk__in=[r.pk for r in losers]).delete()
    return len(losers)


# --- the diff and the upsert, per database ------------------------------------------------------


def diff_counts(run: SyncRun, target: Target, owner_id) -> tuple[int, int, int]:
    """(created, updated, unchanged) the run would produce, without writing."""
    if connection.vendor == "postgresql":
        return _pg_diff_counts(run, target, owner_id)
    created = updated = unchanged = 0
    for chunk in _staged_chunks(run, target):
        existing = _existing(target, owner_id, [k for k, _ in chunk])
        for k, values in chunk:
            if k not in existing:
                created += 1
            elif existing[k] == values:
                unchanged += 1
            else:
                updated += 1
    return created, updated, unchanged


def upsert(run: SyncRun, target: Target, owner_id) -> tuple[int, int]:
    """Write new and changed records; unchanged rows are not touched. (created, updated)."""
    if connection.vendor == "postgresql":
        return _pg_upsert(run, target, owner_id)
    model = target.model
    owner_attr = f"{target.owner_field}_id"
    now = timezone.now()
    created = updated = 0
    update_fields = list(target.fields) + ([target.touch_field] if target.touch_field else [])
    for chunk in _staged_chunks(run, target):
        existing = _existing(target, owner_id, [k for k, _ in chunk])
        writes = []
        for k, values in chunk:
            if k in existing:
                if existing[k] == values:
                    continue
                updated += 1
            else:
                created += 1
            obj = model(**{owner_attr: owner_id, target.key_field: k, **values})
            if target.touch_field:
                setattr(obj, target.touch_field, now)
            writes.append(obj)
        if writes:
            model._default_manager.bulk_create(
                writes, update_conflicts=True, unique_fields=[target.owner_field, target.key_field],
                update_fields=update_fields,
            )
    return created, updated


def _staged_chunks(run: SyncRun, target: Target, size: int = 2000):
    """The run's staged records as (key, {field: value}), in chunks: bounded memory."""
    chunk = []
    names = target.fields
    rows = staging.staged(target, run.pk).order_by("id").values_list("key", *names).iterator(size)
    for key, *values in rows:
        chunk.append((key, dict(zip(names, values))))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _existing(target: Target, owner_id, keys: list[str]) -> dict[str, dict]:
    rows = target.owner_rows(owner_id).filter(**{f"{target.key_field}__in": keys}).values(target.key_field, *target.fields)
    return {row.pop(target.key_field): row for row in rows}


def _pg_source(target: Target) -> tuple[str, list[str]]:
    """The staged records of a run as typed rows, and the target's column names."""
    meta = target.model._meta
    stage = staging.stage_model(target)._meta
    q = connection.ops.quote_name
    cols = [meta.get_field(name).column for name in target.fields]
    select = ", ".join(f"s.{q(stage.get_field(name).column)} AS {q(col)}" for name, col in zip(target.fields, cols))
    sql = f"SELECT s.key, {select} FROM {q(stage.db_table)} s WHERE s.run_id = %s"
    return sql, cols


def _pg_compare(target: Target, cols: list[str]) -> tuple[str, str]:
    q = connection.ops.quote_name
    return ", ".join(f"t.{q(c)}" for c in cols), ", ".join(f"src.{q(c)}" for c in cols)


def _pg_diff_counts(run, target, owner_id):
    source, cols = _pg_source(target)
    t_cols, s_cols = _pg_compare(target, cols)
    q = connection.ops.quote_name
    pk = q(target.model._meta.pk.column)
    sql = (
        f"WITH src AS ({source}) "
        f"SELECT count(*) FILTER (WHERE t.{pk} IS NULL), "
        f"count(*) FILTER (WHERE t.{pk} IS NOT NULL AND ({t_cols}) IS DISTINCT FROM ({s_cols})), "
        f"count(*) FILTER (WHERE t.{pk} IS NOT NULL AND ({t_cols}) IS NOT DISTINCT FROM ({s_cols})) "
        f"FROM src LEFT JOIN {q(target.model._meta.db_table)} t "
        f"ON t.{q(target.owner_column)} = %s AND t.{q(target.key_column)} = src.key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.pk, owner_id])
        return tuple(cursor.fetchone())


def _pg_upsert(run, target, owner_id):
    source, cols = _pg_source(target)
    t_cols, s_cols = _pg_compare(target, cols)
    q = connection.ops.quote_name
    table = q(target.model._meta.db_table)
    owner, key, pk = q(target.owner_column), q(target.key_column), q(target.model._meta.pk.column)
    insert_cols = ", ".join([owner, key] + [q(c) for c in cols])
    select_cols = ", ".join(["%s", "key"] + [q(c) for c in cols])
    sets = [f"{q(c)} = EXCLUDED.{q(c)}" for c in cols]
    if target.touch_field:
        sets.append(f"{q(target.column(target.touch_field))} = now()")
    sql = (
        f"WITH src AS ({source}), "
        f"changed AS (SELECT src.* FROM src LEFT JOIN {table} t ON t.{owner} = %s AND t.{key} = src.key "
        f"  WHERE t.{pk} IS NULL OR ({t_cols}) IS DISTINCT FROM ({s_cols})), "
        f"up AS (INSERT INTO {table} ({insert_cols}) SELECT {select_cols} FROM changed "
        f"  ON CONFLICT ({owner}, {key}) DO UPDATE SET {', '.join(sets)} RETURNING (xmax = 0) AS inserted) "
        f"SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.pk, owner_id, owner_id])
        created, updated = cursor.fetchone()
    return created, updated
