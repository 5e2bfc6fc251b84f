"""The typed staging table of a target: where a run's valid records wait for its apply.

One table per target, with the target's own column types (made at run time from its model, named
after a hash of those columns, so a changed target gets a new table): the key columns typed like
the model's, the schema's fields (a reference typed like the referenced key), plus run, seq, index
and row_kind. Beside the valid records (`r`) it holds the keys of failed records (`f`, they protect
their rows from snapshot deletion) and the listed deletes (`d`), so every comparison of the apply
with the target table is a typed join, whatever the key's type or number of fields. On PostgreSQL
it is UNLOGGED and filled with COPY: the apply then reads typed rows, exactly like a hand-written
loader's staging table (PERFORMANCE.md lesson 1). Elsewhere one INSERT run with executemany.

UNLOGGED tables are emptied by PostgreSQL's crash recovery; the apply therefore checks that the
run's staged rows are all there (`count == sum of batches' staged`) and re-validates otherwise.
"""

import hashlib
import io
import operator
import threading
from itertools import chain, repeat

import msgspec
from django.apps import apps
from django.db import DatabaseError, connection, models, transaction
from django.db.models import OuterRef

from ..targets import Target
from .records import no_gc

_models: dict[str, type[models.Model]] = {}
_ready: set[tuple[str, str, str]] = set()  # (database alias, database name, table) known to exist
_lock = threading.Lock()
_json = msgspec.json.Encoder()


RECORD, FAILED_KEY, DELETE = "r", "f", "d"  # row_kind: a valid record, a failed record's key, a listed delete


class _RowId(models.BigAutoField):
    """The staging table's id. On SQLite a plain INTEGER PRIMARY KEY (the rowid), not AUTOINCREMENT:
    AUTOINCREMENT keeps ids from ever being reused by keeping the highest one in sqlite_sequence,
    which costs about a seventh of each batch's INSERT (measured: 200,000 rows, 0.70 s of CPU with
    it, 0.60 s without), inside the write lock. Ids are still unique and, within a run, in the
    order of staging (a new rowid is above every id in the table, and a run's earlier rows are
    still there); only the id of a row long dropped may come back, which nothing refers to."""

    def db_type_suffix(self, connection):
        return None if connection.vendor == "sqlite" else super().db_type_suffix(connection)


def _unchecked(field: models.Field) -> models.Field:
    """The field without its column CHECK (a positive integer's, SQLite's JSON_VALID of a JSON
    field): staged values are validated already, and on SQLite the checks cost a tenth of each
    batch's INSERT (measured: 50,000 products, 0.166 s of CPU with them, 0.149 s without)."""
    field.db_check = lambda connection: None
    return field


def _stage_field(source: models.Field, *, null: bool) -> models.Field:
    field = _unchecked(source.clone())
    field.primary_key = False
    field._unique = False
    field.db_index = False
    field.null = null
    if hasattr(field, "db_default"):
        from django.db.models.fields import NOT_PROVIDED

        field.db_default = NOT_PROVIDED
    return field


def stage_model(target: Target) -> type[models.Model]:
    """The unmanaged model of the target's staging table (made once per process)."""
    with _lock:
        if target.name in _models:
            return _models[target.name]
        meta = target.model._meta
        columns = ["v3"]  # the table's layout version: v3, no column CHECKs
        attrs = {
            "__module__": __name__,
            "id": _RowId(primary_key=True),
            "run_id": models.UUIDField(),
            "seq": _unchecked(models.PositiveIntegerField()),
            "index": _unchecked(models.PositiveIntegerField()),
            "row_kind": models.CharField(max_length=1),
        }
        # the key columns typed like the model's, so every comparison with the target is typed
        for name in target.keys:
            source = meta.get_field(name)
            attrs[name] = _stage_field(source, null=False)
            columns.append(f"key:{name}:{source.get_internal_type()}:{source.deconstruct()[3]}")
        for name in target.fields:
            source = meta.get_field(name)
            if name in target.references:
                # a reference is staged as the referenced row's key, typed like that key
                ref = target.referenced(name)
                source = ref.model._meta.get_field(ref.keys[0])
                columns.append(f"ref:{ref.name}")
            attrs[name] = _stage_field(source, null=True)
            columns.append(f"{name}:{source.get_internal_type()}:{source.deconstruct()[3]}")
        for name in target.staged_defaults:  # filled with the model's default, for an insert
            source = meta.get_field(name)
            attrs[name] = _stage_field(source, null=True)
            columns.append(f"default:{name}:{source.get_internal_type()}:{source.deconstruct()[3]}")
        digest = hashlib.sha1("|".join(columns).encode()).hexdigest()[:8]
        table = f"integrations_stage_{meta.db_table}_{digest}"[:60]
        model_name = f"Stage_{meta.app_label}_{meta.model_name}_{digest}"
        # index names are one namespace per schema on PostgreSQL: the name hashes the table too
        index_name = "stg_" + hashlib.sha1(f"{table}|{digest}".encode()).hexdigest()[:12] + "_key"
        attrs["Meta"] = type(
            "Meta",
            (),
            {
                "managed": False,
                "db_table": table,
                "app_label": "integrations",
                "indexes": [models.Index(fields=["run_id", *target.keys], name=index_name)],
            },
        )
        try:
            model = apps.get_model("integrations", model_name)
        except LookupError:
            model = type(model_name, (models.Model,), attrs)
        _models[target.name] = model
        return model


def _marker(model: type[models.Model]) -> tuple[str, str, str]:
    return connection.alias, connection.settings_dict["NAME"], model._meta.db_table


def table_exists(target: Target) -> bool:
    """Whether the target's staging table exists (for readers, which never create it: a target
    without one has staged nothing)."""
    model = stage_model(target)
    marker = _marker(model)
    if marker in _ready:
        return True
    if model._meta.db_table in connection.introspection.table_names():
        _ready.add(marker)
        return True
    return False


def ensure_table(target: Target) -> type[models.Model]:
    """Create the staging table if it does not exist yet (plain DDL, safe inside a transaction).
    Called by the writers (validation, the apply, the cleanup), never by a read."""
    model = stage_model(target)
    table = model._meta.db_table
    marker = _marker(model)
    if marker in _ready:
        return model
    if table not in connection.introspection.table_names():
        editor = connection.schema_editor()  # used for its SQL only: no context, no FK pragma dance
        create, params = editor.table_sql(model)
        if connection.vendor == "postgresql":
            create = create.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1)
            q = connection.ops.quote_name
            # a BRIN index of the run (a few pages) instead of the model's B-tree of (run, key): a
            # batch's COPY writes its rows side by side, so block ranges keep apart the runs staged
            # at once, and every join of the apply is a hash join over the run's rows, which reads
            # them all anyway. The B-tree cost a quarter of each COPY (measured: 1,000,000 rows,
            # 2.4 s with it, 1.8 s without); SQLite, without hash joins, keeps it
            after = [f"CREATE INDEX {q(model._meta.indexes[0].name)} ON {q(table)} USING brin (run_id)"]
            # each session takes its rows' ids 1,000 at a time, not one by one from the shared
            # sequence: a tenth of a COPY (1,000,000 rows: 3.1 s -> 2.8 s); ids stay unique, and
            # increasing within a batch (one session's COPY)
            after.append(f"ALTER TABLE {q(table)} ALTER COLUMN {q(model._meta.pk.column)} SET CACHE 1000")
        else:
            after = [str(index.create_sql(model, editor)) for index in model._meta.indexes]
        statements = [create, *after]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement, params if statement is create else None)
        except DatabaseError:
            # another worker created it at the same moment
            if table not in connection.introspection.table_names():
                raise
    _ready.add(marker)
    return model


def staged(target: Target, run_id, kind: str | None = RECORD) -> models.QuerySet:
    """A run's staging rows of one kind (valid records by default; None: every kind)."""
    rows = stage_model(target).objects.filter(run_id=run_id)
    return rows if kind is None else rows.filter(row_kind=kind)


# Emptying the staging table when no other unfinished run keeps rows there (discard): the statements
# that lock it against a batch being staged meanwhile, and the one that empties it whole.
_EMPTY_WHOLE = {
    # TRUNCATE: a DELETE leaves dead tuples until VACUUM; waits at most 200 ms for the lock
    "postgresql": (
        ("SET LOCAL lock_timeout = '200ms'", "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"),
        "TRUNCATE {table}",
    ),
    # a first statement that writes takes the one write lock (if BEGIN did not); a DELETE without
    # WHERE empties the table without visiting its rows
    "sqlite": (("DELETE FROM {table} WHERE 0",), "DELETE FROM {table}"),
}


def discard(target: Target, run_id) -> None:
    """Drop the staging rows of a run that has ended. When no other unfinished run of the target
    keeps rows there, the whole table is emptied instead (_EMPTY_WHOLE): on PostgreSQL a DELETE left
    a run's rows as dead tuples until VACUUM, and on a server without autovacuum the table grew
    without bound, every apply's scan of it slower (a bench database reached 7 GB, B's apply 50 %
    slower); on SQLite a DELETE by run held the one write lock about half a second per 1,000,000
    rows. The check runs under the table's lock, so no batch is being staged meanwhile (a staged
    batch commits its rows with its validated_at); a lock not granted (another run reading or
    writing it) leaves the DELETE by run."""
    model = ensure_table(target)
    whole = _EMPTY_WHOLE.get(connection.vendor)
    if whole is not None:
        lock, empty = whole
        table = connection.ops.quote_name(model._meta.db_table)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for sql in lock:
                    cursor.execute(sql.format(table=table))
                if not _kept_by_others(target, run_id):
                    cursor.execute(empty.format(table=table))
                    return
        except DatabaseError:
            pass  # busy: the DELETE below, and a later cleanup empties it
    staged(target, run_id, None).delete()


def _kept_by_others(target: Target, run_id) -> bool:
    """Does an unfinished run of the target, other than this one, have staged batches?"""
    from ..models import SyncBatch, SyncRun

    return (
        SyncBatch.objects.filter(run__integration__target=target.name, validated_at__isnull=False)
        .exclude(run_id=run_id)
        .exclude(run__status__in=SyncRun.END_STATES)
        .exists()
    )


def same_key(target: Target) -> dict:
    """Filter arguments matching a staging row's key with the key of the outer query's row."""
    return {name: OuterRef(name) for name in target.keys}


class Prepared:
    """One batch's staging rows, made ready to write (`prepare`); `write()` writes them inside the
    caller's transaction and returns their number. Made before the transaction because on SQLite a
    write transaction holds the database's one write lock: every Python step per row done inside it
    (adapting values, encoding JSON) made every other writer wait (the web storing the next batch,
    the queue, the other worker's staging)."""

    def __init__(self, rows: int, execute):
        self.rows, self._execute = rows, execute

    def write(self) -> int:
        if self.rows:
            self._execute()
        return self.rows


def prepare(target: Target, run_id, seq: int, valid: list, *, failed: list = (), deletes: list = ()) -> Prepared:
    """The staging rows of one batch: `valid` [(index, key, record struct)], the keys of failed
    records [(index, key)] and listed deletes [key], ready to write (Prepared.write)."""
    rows = len(valid) + len(failed) + len(deletes)
    if not rows:
        return Prepared(0, None)
    model = stage_model(target)
    if connection.vendor == "postgresql":
        return Prepared(rows, _copy(model, target, run_id, seq, valid, failed, deletes))
    return Prepared(rows, _insert_many(model, target, run_id, seq, valid, failed, deletes))


def _adapter(field: models.Field):
    """A staging column's value as the database driver takes it (what the ORM would write), or
    None where the driver takes the Python value as it is."""
    kind = field.get_internal_type()
    if kind in (
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "URLField",
        "BooleanField",
        "FloatField",
    ) or kind.endswith("IntegerField"):
        return None
    if kind == "DecimalField" and connection.vendor == "sqlite":
        return None  # Django's SQLite backend registers str() for Decimal; the NUMERIC column stores the number
    if kind == "JSONField":
        encode = _json.encode
        return lambda v: encode(v).decode()
    return lambda v: field.get_db_prep_save(v, connection)


def _record_columns(meta, target: Target, valid: list) -> tuple[list, list[list]]:
    """The valid records' indexes, and their values a column at a time (the key fields, the
    schema's fields, then each staged default, called per record: two inserted rows never share one
    uuid4). Both dialects write from these: a column at a time, the rows zipped in C, about half the
    CPU of building each row in Python."""
    recs = [rec for _index, _key, rec in valid]
    columns = [list(map(operator.attrgetter(n), recs)) for n in (*target.keys, *target.fields)]
    for field in (meta.get_field(n) for n in target.staged_defaults):
        columns.append([field.get_default() for _ in recs])
    return [index for index, _key, _rec in valid], columns


def _insert_many(model, target: Target, run_id, seq: int, valid: list, failed: list, deletes: list):
    """Elsewhere than PostgreSQL: one INSERT statement run for many rows (executemany), each value
    adapted by its column's type, without a model instance per row (PERFORMANCE.md lesson 1). The
    rows are made now; the statement runs when the returned function is called."""
    meta = model._meta
    names, keys = target.fields, target.keys
    key_adapters = [_adapter(meta.get_field(n)) for n in keys]
    adapters = [_adapter(meta.get_field(n)) for n in (*keys, *names, *target.staged_defaults)]
    run = meta.get_field("run_id").get_db_prep_value(run_id, connection)
    single = not target.composite

    def adapt_key(key):
        parts = (key,) if single else key
        return [v if a is None or v is None else a(v) for a, v in zip(key_adapters, parts)]

    def records() -> list:
        indexes, columns = _record_columns(meta, target, valid)
        # only the columns that need it are adapted
        columns = [c if a is None else [v if v is None else a(v) for v in c] for a, c in zip(adapters, columns)]
        return list(zip(repeat(run), repeat(seq), indexes, repeat(RECORD), *columns))

    empty = [None] * (len(names) + len(target.staged_defaults))

    def keys_only():
        for kind, items in ((FAILED_KEY, failed), (DELETE, enumerate(deletes))):
            for index, key in items:
                yield [run, seq, index, kind, *adapt_key(key), *empty]

    q = connection.ops.quote_name
    cols = ["run_id", "seq", q("index"), "row_kind"] + [
        q(meta.get_field(n).column) for n in (*keys, *names, *target.staged_defaults)
    ]
    head = f"INSERT INTO {q(meta.db_table)} ({', '.join(cols)}) VALUES "
    with no_gc():
        statements = _multi_row(head, len(cols), [*records(), *keys_only()])

    def execute() -> None:
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.executemany(sql, params)

    return execute


ROWS_PER_INSERT = 500  # at most, where the database sets no lower bound on a statement's parameters


def _multi_row(head: str, width: int, rows: list) -> list[tuple[str, list]]:
    """`rows` as (statement, parameter lists) for executemany: INSERTs of as many rows each as a
    statement's parameters allow (SQLite: 999 / width). On SQLite one statement of 90 rows is about
    two fifths cheaper per row than the one-row statement run 50,000 times (measured: 50,000
    products, 0.19 s of CPU, 0.12 s). Lists: with DEBUG on, Django's cursor wrapper takes len() of them."""
    limit = connection.features.max_query_params
    per = max(1, min(ROWS_PER_INSERT, limit // width if limit else ROWS_PER_INSERT))
    one = "(" + ", ".join(["%s"] * width) + ")"
    full = len(rows) - len(rows) % per
    statements = []
    if full:
        flat = list(chain.from_iterable(rows[:full]))
        step = per * width
        statements.append((head + ", ".join([one] * per), [flat[i : i + step] for i in range(0, len(flat), step)]))
    if full < len(rows):
        statements.append((head + ", ".join([one] * (len(rows) - full)), [list(chain.from_iterable(rows[full:]))]))
    return statements


def _text(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


_NULL = "\\N"
_SPECIAL = ("\\", "\t", "\n", "\r")  # the characters a COPY text cell must escape


def _text_column(values: list) -> list:
    """A text column in COPY's text format: NULL as \\N, a backslash, tab or line break escaped.
    One scan of the whole column decides; only a column holding one of them is escaped value by value."""
    if None in values:
        return [_NULL if v is None else _text(v) for v in values]
    joined = "".join(values)
    if any(c in joined for c in _SPECIAL):
        return list(map(_text, values))
    return values


def _column_encoder(field: models.Field):
    """A function from a column's Python values (a list) to their COPY text cells."""
    kind = field.get_internal_type()
    if kind == "BooleanField":
        cells = {True: "t", False: "f", None: _NULL}
        return lambda values: [cells[v] for v in values]
    if kind == "JSONField":
        encode = _json.encode

        def json_column(values):
            # JSON text holds no raw tab or line break; its backslashes are COPY's escape character
            out = [None if v is None else encode(v).decode() for v in values]
            if "\\" in "".join(v for v in out if v is not None):
                out = [None if v is None else v.replace("\\", "\\\\") for v in out]
            return [_NULL if v is None else v for v in out] if None in out else out

        return json_column
    if kind in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return _text_column
    if kind == "DecimalField" or kind.endswith("IntegerField") or kind == "FloatField":

        def number_column(values):
            # `None in values` would compare each Decimal with None through the numbers ABCs: slower
            # than the str() of every value, and str() of a number is never "None"
            out = list(map(str, values))
            return [_NULL if v is None else c for v, c in zip(values, out)] if "None" in out else out

        return number_column
    return lambda values: _text_column([None if v is None else str(v) for v in values])


def _copy(model, target: Target, run_id, seq: int, valid: list, failed: list, deletes: list):
    """PostgreSQL: the rows as COPY text, made now; the COPY runs when the returned function is called.
    A column at a time, like _insert_many: each column's cells made by one function over the whole
    column (a text column without a tab, line break or backslash is taken as it is), the lines
    joined in C (measured: 50,000 products, 0.095 s of CPU value by value, 0.03 s by column)."""
    meta = model._meta  # the staging table's fields: a reference is its key's type there
    names, keys = target.fields, target.keys
    key_encoders = [_column_encoder(meta.get_field(n)) for n in keys]
    encoders = [_column_encoder(meta.get_field(n)) for n in (*keys, *names, *target.staged_defaults)]
    prefix = f"{run_id}\t{seq}"

    def rows(indexes: list, kind: str, columns: list) -> str:
        return "\n".join(map("\t".join, zip(repeat(prefix), map(str, indexes), repeat(kind), *columns)))

    lines = []
    if valid:
        indexes, columns = _record_columns(meta, target, valid)
        lines.append(rows(indexes, RECORD, [enc(c) for enc, c in zip(encoders, columns)]))
    # a failed record's key or a listed delete: its key, every other column NULL (one cell of them all)
    width = len(names) + len(target.staged_defaults)
    nulls = [repeat("\t".join([_NULL] * width))] if width else []
    for kind, items in ((FAILED_KEY, failed), (DELETE, list(enumerate(deletes)))):
        if items:
            keyed = [key for _index, key in items]
            parts = [list(part) for part in zip(*keyed)] if target.composite else [keyed]
            columns = [enc(part) for enc, part in zip(key_encoders, parts)]
            lines.append(rows([index for index, _key in items], kind, columns + nulls))
    data = io.BytesIO(("\n".join(lines) + "\n").encode())
    q = connection.ops.quote_name
    cols = ", ".join(
        ["run_id", "seq", q("index"), "row_kind"]
        + [q(model._meta.get_field(n).column) for n in (*keys, *names, *target.staged_defaults)]
    )
    sql = f"COPY {q(model._meta.db_table)} ({cols}) FROM STDIN"

    def execute() -> None:
        with connection.cursor() as cursor:
            if hasattr(cursor.cursor, "copy_expert"):  # psycopg2
                # size positionally: with DEBUG on, Django's CursorDebugWrapper.copy_expert(sql, file, *args) takes no keywords
                cursor.copy_expert(sql, data, 1 << 20)
            else:  # psycopg 3 (Django's choice when a host has it installed)
                with cursor.copy(sql) as copy:
                    while chunk := data.read(1 << 20):
                        copy.write(chunk)

    return execute


def row_values(target: Target, row: models.Model) -> dict:
    """A staged row as the JSON-ready record it came from (for a duplicate_key error)."""
    out = {}
    for name in (*target.keys, *target.fields):
        value = getattr(row, name)
        if not (value is None or isinstance(value, (str, int, float, bool, dict, list))):
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        out[name] = value
    return out


def row_key(target: Target, row: models.Model):
    """The target's key of a staged row."""
    if target.composite:
        return tuple(getattr(row, name) for name in target.keys)
    return getattr(row, target.keys[0])
