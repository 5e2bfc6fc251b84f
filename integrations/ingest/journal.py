"""The change journal of a run (SPEC 13): which keys it created, updated or deleted, and how.

`record` is called by plan_and_apply after every decision (error policy, deletion guard) and
before the writes, in the run's transaction: it compares the staging table and the deletion plan
(the very querysets the apply deletes) with the target table as it is, so the journal says
exactly what the writes that follow do (and, for a dry run, what they would do). Never one query
per record: INSERT ... SELECT statements, one builder with a PostgreSQL and a SQLite dialect (on
PostgreSQL, for a run that applies, the journal of its new and changed rows is a CTE of the upsert
itself: one comparison of staging and table feeds both, see `folds_into_upsert`); only a target
with a field type SQL does not render as Python does (`in_sql`) is journaled in bounded chunks
through Python (one read of the target per chunk, one bulk insert). A run held by the deletion
guard journals what approval would change; the approved run's apply replaces that journal with
what it did.

A row's synced fields are kept as JSON under their field names (a decimal, a date, a UUID as a
string, a reference as the referenced row's id): `before` as the row was, `after` as the run
leaves it. The undo (ingest/undo.py) reads them back with the model fields' `to_python`. A row an
applied run created on PostgreSQL keeps no `after` but a 64-bit `digest` of the values written
(`pg_digest`): the undo compares it with the row's, the API reads the values from the table
(`fill_created`); writing every created row's JSON was most of a first load's journal (bench).
"""

import datetime
import decimal
import uuid

from django.conf import settings
from django.db import connection
from django.db.models.deletion import Collector

from ..conf import conf
from ..models import RunChange, SyncRun
from ..targets import Target
from . import staging
from .deletions import DeletionPlan, pk_subquery

CHUNK = 2000
Op = RunChange.Op


def enabled() -> bool:
    # for the bench's A/B measurement only (bench/engine.py): the journal is part of the contract
    return not conf.BENCH_NO_JOURNAL


def folds_into_upsert(run: SyncRun) -> bool:
    """Does the upsert journal its own writes (PostgreSQL, a run that applies)? Then the staged
    records are compared with the table once, not twice: the upsert's prefilter of new and changed
    rows feeds both its INSERT and the journal's (`pg_upsert_journal`); `record` journals the
    deletions only. A dry run and a held run write nothing: `record` journals everything."""
    return enabled() and connection.vendor == "postgresql" and not run.dry_run


def folds_deletes(run: SyncRun, target: Target) -> bool:
    """Does the DELETE journal the rows it removes (PostgreSQL, a run that applies, a target whose
    rows Django deletes in one statement: no cascade, no signal)? Then the deletion plan's anti-join
    runs once, in `delete_journaled`, not once for the journal and again for the delete."""
    if not folds_into_upsert(run) or not in_sql(target):
        return False
    return Collector(using=connection.alias).can_fast_delete(target.model)


def delete_journaled(run: SyncRun, target: Target, plan: DeletionPlan) -> int:
    """Delete the deletion plan's rows and journal each row as it was, in one statement
    (`DELETE ... RETURNING` feeding the journal's INSERT); how many rows went. Only where
    `folds_deletes` said yes: Django would have deleted them in one statement too."""
    q = connection.ops.quote_name
    table = q(target.model._meta.db_table)
    pk = q(target.model._meta.pk.column)
    run_id = RunChange._meta.get_field("run").get_db_prep_value(run.pk, connection)
    rows, ids_params = plan.rows_sql(f"t.{pk}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {table} t WHERE {rows} RETURNING t.*) "
            f"{_insert()}SELECT %s, 'deleted', {_key(target, 'gone')}, {_json(target, 'gone')}, NULL, false, NULL "
            f"FROM gone",
            [*ids_params, run_id],
        )
        return cursor.rowcount


def record(run: SyncRun, target: Target, owner_id, doomed, *, upserts: bool = True) -> tuple[int, int] | None:
    """Journal what applying the run's staged records (unless `upserts` is False: the upsert
    journals them itself) and deleting `doomed` (a queryset of the owner's rows, or None) changes
    in the table as it is now. A journal the run had already (a held run's, what approval would
    change) is replaced: the approved run journals what it does now.

    Returns (created, updated) when it compared the staged records with the table in SQL, as the
    upsert compares them (the same join and condition): the SQLite upsert then need not count
    them again (apply.upsert's `counts`). Else None."""
    if not enabled():
        return None
    RunChange.objects.filter(run=run).delete()
    if in_sql(target):
        return _sql_record(run, target, owner_id, doomed, upserts=upserts)
    _py_record(run, target, owner_id, doomed)
    return None


# --- values as JSON -------------------------------------------------------------------------------


def json_value(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def row_json(target: Target, values: dict) -> dict:
    return {name: json_value(values[name]) for name in target.fields}


def python_values(target: Target, data: dict) -> dict:
    """A journal's JSON row back as the model's attribute values ({attname: value})."""
    meta = target.model._meta
    out = {}
    for name in target.fields:
        field = meta.get_field(name)
        value = data.get(name)
        out[field.attname] = None if value is None else field.to_python(value)
    return out


def changed_fields(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    """An update as the API shows it: only the fields that changed, before and after."""
    if before is None or after is None:
        return before, after
    names = [n for n in after if before.get(n) != after[n]]
    return {n: before.get(n) for n in names}, {n: after[n] for n in names}


def fill_created(target: Target, owner_id, changes: list) -> list:
    """Give the created rows journaled by digest (an applied run's, on PostgreSQL) their `after`,
    read from the table: the row's synced values while it is still as the run left it (same
    digest), else None (changed or deleted since: the journal does not know the values). One
    query for the lot (a page of the API, a chunk of the CSV); the changes are not saved."""
    from .undo import _current

    pending = [c for c in changes if c.op == Op.CREATED and c.digest is not None and c.after is None]
    if not pending:
        return changes
    meta = target.model._meta
    attnames = [meta.get_field(name).attname for name in target.fields]
    keys = {target.parse_key(c.key) for c in pending} - {None}
    current = _current(target, owner_id, list(keys), attnames, with_digest=True)
    for change in pending:
        row = current.get(target.parse_key(change.key))
        if row is not None and row[2] == change.digest:
            change.after = {name: json_value(row[1][attname]) for name, attname in zip(target.fields, attnames)}
    return changes


# --- through Python (a field type `in_sql` does not render): bounded chunks -------------------------


def _staged_chunks(run: SyncRun, target: Target, owner_id, size: int = 2000):
    """The run's staged records as (key, {field: value}), in chunks: bounded memory. A reference
    is resolved to the referenced row's primary key (one query per chunk and reference)."""
    chunk = []
    names = target.fields
    width = len(target.keys)
    rows = staging.staged(target, run.pk).order_by("id").values_list(*target.keys, *names).iterator(size)
    for row in rows:
        key = tuple(row[:width]) if width > 1 else row[0]
        chunk.append((key, dict(zip(names, row[width:]))))
        if len(chunk) >= size:
            yield _resolved(target, owner_id, chunk)
            chunk = []
    if chunk:
        yield _resolved(target, owner_id, chunk)


def _resolved(target: Target, owner_id, chunk: list) -> list:
    for name in target.references:
        ref = target.referenced(name)
        wanted = {values[name] for _, values in chunk if values[name] is not None}
        ids = dict(ref.owner_rows(owner_id).filter(**{f"{ref.keys[0]}__in": wanted}).values_list(ref.keys[0], "pk"))
        for _, values in chunk:
            if values[name] is not None:
                values[name] = ids[values[name]]  # unknown keys became errors before
    return chunk


def _existing(target: Target, owner_id, keys: list) -> dict:
    """The owner's current rows with these keys, {key: {field: value}}. A composite key is looked
    up part by part (each part IN its values), which may also read a few rows of other keys."""
    rows = target.owner_rows(owner_id)
    if not target.composite:
        name = target.keys[0]
        values = rows.filter(**{f"{name}__in": keys}).values(name, *target.fields)
        return {row.pop(name): row for row in values}
    for i, name in enumerate(target.keys):
        rows = rows.filter(**{f"{name}__in": {k[i] for k in keys}})
    wanted = set(keys)
    out = {}
    for row in rows.values(*target.keys, *target.fields):
        key = tuple(row.pop(name) for name in target.keys)
        if key in wanted:
            out[key] = row
    return out


def _py_record(run, target, owner_id, doomed) -> None:
    key_json = target.key_json
    for chunk in _staged_chunks(run, target, owner_id, size=CHUNK):
        existing = _existing(target, owner_id, [k for k, _ in chunk])
        entries = []
        for k, values in chunk:
            old = existing.get(k)
            if old is None:
                entries.append(RunChange(run=run, op=Op.CREATED, key=key_json(k), after=row_json(target, values)))
            elif old != values:
                entries.append(
                    RunChange(
                        run=run,
                        op=Op.UPDATED,
                        key=key_json(k),
                        before=row_json(target, old),
                        after=row_json(target, values),
                    )
                )
        RunChange.objects.bulk_create(entries, batch_size=500)
    if doomed is None:
        return
    width = len(target.keys)
    entries = []
    for row in doomed.order_by("pk").values_list(*target.keys, *target.fields).iterator(CHUNK):
        k = tuple(row[:width]) if width > 1 else row[0]
        values = dict(zip(target.fields, row[width:]))
        entries.append(RunChange(run=run, op=Op.DELETED, key=key_json(k), before=row_json(target, values)))
        if len(entries) >= CHUNK:
            RunChange.objects.bulk_create(entries, batch_size=500)
            entries = []
    RunChange.objects.bulk_create(entries, batch_size=500)


# --- in SQL: INSERT ... SELECT, one builder, a dialect per database -----------------------------
#
# The JSON a row's values and key take is built by the database, exactly as `row_json` and
# `Target.key_json` build it in Python (`_py_record`, kept for the field types SQL cannot render
# the same way): `_value` renders one column as its JSON value, `_json` a row's synced fields as a
# JSON object, `_key` a key; each has a PostgreSQL and a SQLite dialect.

# SQLite: the field types rendered in SQL (by their storage: Django's SQLite conventions)
SQLITE_AS_IS = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "BigIntegerField",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "CharField",
    "EmailField",
    "SlugField",
    "TextField",
    "URLField",
    "DateField",  # stored as its isoformat, YYYY-MM-DD
    "TimeField",  # stored as its isoformat, HH:MM:SS[.ffffff]
}
SQLITE_RENDERED = SQLITE_AS_IS | {
    "BooleanField",
    "DecimalField",
    "DateTimeField",
    "UUIDField",
    "JSONField",
    "FloatField",
}


def _stored(field):
    """The field whose values a column holds: a reference holds the referenced row's id."""
    return field.target_field if field.is_relation else field


def in_sql(target: Target) -> bool:
    """Is the journal of this target written in SQL? On PostgreSQL always; on SQLite when every
    key and synced field is of a type rendered in SQL (`_value`), and datetimes read back in UTC
    (their isoformat's offset is then +00:00)."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor != "sqlite":
        return False
    meta = target.model._meta
    for name in (*target.keys, *target.fields):
        kind = _stored(meta.get_field(name)).get_internal_type()
        if kind not in SQLITE_RENDERED:
            return False
        if kind == "DateTimeField" and settings.USE_TZ and connection.timezone_name != "UTC":
            return False
    return True


def _value(field, expr: str, *, key: bool = False) -> str:
    """SQL: the JSON value of a column (`expr`) of this model field, as `json_value` (or, `key`, as
    `Target.key_json`'s part) gives it for the value Django reads: a decimal as a string with the
    field's decimal places, a date or time as its isoformat, a UUID with dashes, a JSON field
    embedded, a reference as the referenced row's id."""
    field = _stored(field)
    kind = field.get_internal_type()
    if connection.vendor == "postgresql":
        return f"{expr}::text" if kind == "DecimalField" else expr
    if kind in SQLITE_AS_IS:
        return expr
    if kind == "BooleanField":  # stored 1/0
        return f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN json('true') ELSE json('false') END"
    if kind == "DecimalField":  # stored as a REAL (or an INTEGER): Django reads it quantized
        # '%%': the statement always runs with parameters, which turn it into one '%' (and DEBUG's
        # last_executed_query formats the SQL with `%`: a lone '%' there was a crash)
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE printf('%%.{field.decimal_places}f', {expr}) END"
    if kind == "DateTimeField":  # stored "YYYY-MM-DD HH:MM:SS[.ffffff]", in UTC when USE_TZ
        offset = " || '+00:00'" if settings.USE_TZ else ""
        # the key as str(datetime) (a space), a value as its isoformat (a T)
        return f"{expr}{offset}" if key else f"replace({expr}, ' ', 'T'){offset}"
    if kind == "UUIDField":  # stored as 32 hex digits
        parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
        return " || '-' || ".join(f"substr({expr}, {a}, {n})" for a, n in parts)
    if kind == "JSONField":  # stored as JSON text
        return f"json({expr})"
    if kind == "FloatField":  # every digit a double needs (SQLite's JSON keeps only 15)
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE json(printf('%%!.17g', {expr})) END"
    raise ValueError(f"no SQL for a {kind} in the journal")  # in_sql() said no: _py_record


def _json(target: Target, alias: str, *, names=None, columns=None) -> str:
    """SQL: a JSON object of the target's synced fields read from `alias` (jsonb on PostgreSQL;
    at most 50 pairs per call: a function takes at most 100 arguments on PostgreSQL, 127 on SQLite)."""
    meta = target.model._meta
    q = connection.ops.quote_name
    names = target.fields if names is None else names
    pairs = []
    for i, name in enumerate(names):
        column = columns[i] if columns else meta.get_field(name).column
        pairs.append((name, _value(meta.get_field(name), f"{alias}.{q(column)}")))
    chunks = [", ".join(f"'{n}', {e}" for n, e in pairs[i : i + 50]) for i in range(0, len(pairs), 50)]
    if connection.vendor == "postgresql":
        if not pairs:
            return "'{}'::jsonb"
        return " || ".join(f"jsonb_build_object({chunk})" for chunk in chunks)
    if not pairs:
        return "json_object()"
    out = f"json_object({chunks[0]})"
    for i in range(50, len(pairs), 50):  # json_set keeps a null (json_patch would drop the key)
        paths = ", ".join(f"'$.\"{n}\"', {e}" for n, e in pairs[i : i + 50])
        out = f"json_set({out}, {paths})"
    return out


def _key(target: Target, alias: str) -> str:
    """SQL: the key of the row at `alias` as `Target.key_json` gives it (a value, or an object)."""
    meta = target.model._meta
    q = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"
    parts = [
        (name, _value(meta.get_field(name), f"{alias}.{q(column)}", key=True))
        for name, column in zip(target.keys, target.key_columns)
    ]
    if not target.composite:
        return f"to_jsonb({parts[0][1]})" if postgres else f"json_quote({parts[0][1]})"
    build = "jsonb_build_object" if postgres else "json_object"
    return f"{build}(" + ", ".join(f"'{n}', {e}" for n, e in parts) + ")"


def _insert() -> str:
    table = connection.ops.quote_name(RunChange._meta.db_table)
    return f"INSERT INTO {table} (run_id, op, key, before, after, conflict, digest) "


# field types whose PostgreSQL type hashes by value (hash_record_extended needs a hash for each)
HASHABLE = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EmailField",
    "FloatField",
    "IntegerField",
    "JSONField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
    "TimeField",
    "URLField",
    "UUIDField",
}


def digests(target: Target) -> bool:
    """Does an applied run journal its created rows by digest (PostgreSQL, every synced column of a
    type that hashes by value)? Else with their values in `after`."""
    meta = target.model._meta
    if connection.vendor != "postgresql" or not target.fields:
        return False
    for name in target.fields:
        field = meta.get_field(name)
        kind = (field.target_field if field.is_relation else field).get_internal_type()
        if kind not in HASHABLE:
            return False
    return True


def pg_digest(target: Target, alias: str) -> str:
    """SQL: the 64-bit hash of a target row's synced columns (`alias`: the table or its alias), the
    same expression when the upsert writes the row and when the undo reads it back: equal values
    hash equally (a decimal by value, jsonb by value)."""
    q = connection.ops.quote_name
    columns = ", ".join(f"{alias}.{q(target.column(name))}" for name in target.fields)
    return f"hash_record_extended(ROW({columns}), 0)"


def pg_upsert_journal(
    target: Target, cols: list[str], changed: str, up: str, *, updates: bool = True
) -> tuple[str, str, str]:
    """For the upsert (PostgreSQL): (the extra columns its prefilter `changed` selects beside the
    staged record: the existing row's primary key as "_j_old" and its synced fields as JSON as
    "_j_before"; what its INSERT returns beside `inserted`; a CTE journaling what it wrote, taking
    the run's id as its parameters, one per branch). An updated row is journaled from `changed`, with
    its values before and after; a created row from what the INSERT returned: its key and, where the
    target allows (`digests`), only the digest of its values (its JSON was most of a first load's
    journal), else its values. Without `updates` (the owner has no rows: a first load) only the
    created rows, and the prefilter selects nothing extra (read once, it is not kept for the journal)."""
    q = connection.ops.quote_name
    pk = q(target.model._meta.pk.column)
    table = q(target.model._meta.db_table)
    keys = "".join(f", {table}.{q(c)}" for c in target.key_columns)
    if digests(target):
        returning = f"{keys}, {pg_digest(target, table)} AS _j_digest"
        created = "NULL, false, _j_digest"
    else:
        returning = f"{keys}, {_json(target, table)} AS _j_after"
        created = "_j_after, false, NULL"
    cte = f"SELECT %s, 'created', {_key(target, up)}, NULL, {created} FROM {up} WHERE inserted"
    if not updates:
        return "", returning, f"{_insert()}{cte}"
    extra = f"t.{pk} AS _j_old, CASE WHEN t.{pk} IS NULL THEN NULL ELSE {_json(target, 't')} END AS _j_before"
    cte = (
        f"{_insert()}SELECT %s, 'updated', {_key(target, changed)}, _j_before, "
        f"{_json(target, changed, columns=cols)}, false, NULL FROM {changed} WHERE _j_old IS NOT NULL "
        f"UNION ALL {cte}"
    )
    return extra, returning, cte


def _sql_record(run, target, owner_id, doomed, *, upserts: bool = True) -> tuple[int, int] | None:
    """The journal in INSERT ... SELECT statements (PostgreSQL; SQLite where `in_sql`): the staged
    records compared with the table as the upsert compares them (apply._compare), new and changed
    ones journaled, and counted (created, updated; None unless `upserts`); then the doomed rows."""
    from .apply import _compare, _join, _owner_has_rows, _source

    q = connection.ops.quote_name
    table = q(target.model._meta.db_table)
    pk = q(target.model._meta.pk.column)
    run_id = RunChange._meta.get_field("run").get_db_prep_value(run.pk, connection)
    insert = _insert()
    counts = None
    with connection.cursor() as cursor:
        if upserts and connection.vendor == "sqlite" and not _owner_has_rows(target, owner_id):
            # a first load: every staged record is created; no join with the table. It stays so:
            # this transaction holds SQLite's one write lock since `record` deleted the old journal
            source, source_params, cols = _source(target, run.pk, owner_id)
            cursor.execute(
                f"WITH src AS ({source}) {insert}"
                f"SELECT %s, 'created', {_key(target, 'src')}, NULL, {_json(target, 'src', columns=cols)}, false, NULL "
                f"FROM src",
                [*source_params, run_id],
            )
        elif upserts:
            source, source_params, cols = _source(target, run.pk, owner_id)
            differs, _ = _compare(target, cols)
            cursor.execute(
                f"WITH src AS ({source}) {insert}"
                f"SELECT %s, CASE WHEN t.{pk} IS NULL THEN 'created' ELSE 'updated' END, {_key(target, 'src')}, "
                f"CASE WHEN t.{pk} IS NULL THEN NULL ELSE {_json(target, 't')} END, "
                f"{_json(target, 'src', columns=cols)}, false, NULL "
                f"FROM src LEFT JOIN {table} t ON {_join(target)} WHERE t.{pk} IS NULL OR {differs}",
                [*source_params, run_id, owner_id],
            )
        if upserts and connection.vendor == "sqlite":  # for the upsert (PostgreSQL's counts its own)
            # the run's journal holds nothing else yet: its rows, counted by op
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE op = 'created'), count(*) FILTER (WHERE op = 'updated') "
                f"FROM {q(RunChange._meta.db_table)} WHERE run_id = %s",
                [run_id],
            )
            created, updated = cursor.fetchone()
            counts = (created or 0, updated or 0)
        if doomed is not None:
            ids, ids_params = pk_subquery(doomed)
            cursor.execute(
                f"{insert}SELECT %s, 'deleted', {_key(target, 't')}, {_json(target, 't')}, NULL, false, NULL "
                f"FROM {table} t WHERE t.{pk} IN ({ids})",
                [run_id, *ids_params],
            )
    return counts
