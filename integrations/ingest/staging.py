"""The typed staging table of a target: where a run's valid records wait for its apply.

One table per target, with the target's own column types (made at run time from its model, named
after a hash of those columns, so a changed target gets a new table), plus run, seq, index and
key. On PostgreSQL it is UNLOGGED and filled with COPY: the apply then reads typed rows, exactly
like a hand-written loader's staging table (PERFORMANCE.md lesson 1). Elsewhere bulk_create.

UNLOGGED tables are emptied by PostgreSQL's crash recovery; the apply therefore checks that the
run's staged rows are all there (`count == sum of batches' valid`) and re-validates otherwise.
"""

import hashlib
import io
import threading
from decimal import Decimal

import msgspec
from django.apps import apps
from django.db import DatabaseError, connection, models, transaction

from ..targets import Target

_models: dict[str, type[models.Model]] = {}
_ready: set[tuple[str, str]] = set()  # (database alias, table) known to exist
_lock = threading.Lock()
_json = msgspec.json.Encoder()


def stage_model(target: Target) -> type[models.Model]:
    """The unmanaged model of the target's staging table (made once per process)."""
    with _lock:
        if target.name in _models:
            return _models[target.name]
        meta = target.model._meta
        columns = []
        attrs = {
            "__module__": __name__,
            "id": models.BigAutoField(primary_key=True),
            "run_id": models.UUIDField(),
            "seq": models.PositiveIntegerField(),
            "index": models.PositiveIntegerField(),
            "key": models.CharField(max_length=255),
        }
        for name in target.fields:
            source = meta.get_field(name)
            field = source.clone()
            field.primary_key = False
            field._unique = False
            field.db_index = False
            field.null = True
            if hasattr(field, "db_default"):
                from django.db.models.fields import NOT_PROVIDED

                field.db_default = NOT_PROVIDED
            attrs[name] = field
            columns.append(f"{name}:{source.get_internal_type()}:{source.deconstruct()[3]}")
        digest = hashlib.sha1("|".join(columns).encode()).hexdigest()[:8]
        table = f"integrations_stage_{meta.db_table}_{digest}"[:60]
        model_name = f"Stage_{meta.app_label}_{meta.model_name}_{digest}"
        attrs["Meta"] = type("Meta", (), {
            "managed": False, "db_table": table, "app_label": "integrations",
            "indexes": [models.Index(fields=["run_id", "key"], name=f"stg_{digest}_run_key")],
        })
        try:
            model = apps.get_model("integrations", model_name)
        except LookupError:
            model = type(model_name, (models.Model,), attrs)
        _models[target.name] = model
        return model


def ensure_table(target: Target) -> type[models.Model]:
    """Create the staging table if it does not exist yet (plain DDL, safe inside a transaction)."""
    model = stage_model(target)
    table = model._meta.db_table
    marker = (connection.alias, connection.settings_dict["NAME"], table)
    if marker in _ready:
        return model
    if table not in connection.introspection.table_names():
        editor = connection.schema_editor()  # used for its SQL only: no context, no FK pragma dance
        create, params = editor.table_sql(model)
        if connection.vendor == "postgresql":
            create = create.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1)
        statements = [create] + [str(index.create_sql(model, editor)) for index in model._meta.indexes]
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


def forget_tables() -> None:
    """Tests that drop databases call this so the next run re-creates the tables."""
    _ready.clear()


def staged(target: Target, run_id) -> models.QuerySet:
    return stage_model(target).objects.filter(run_id=run_id)


def write(target: Target, run_id, seq: int, valid: list) -> None:
    """Stage `valid` [(index, key, record struct)] of one batch, inside the caller's transaction."""
    if not valid:
        return
    model = stage_model(target)
    if connection.vendor == "postgresql":
        _copy(model, target, run_id, seq, valid)
        return
    names = target.fields
    model.objects.bulk_create(
        (model(run_id=run_id, seq=seq, index=index, key=key, **{n: getattr(rec, n) for n in names})
         for index, key, rec in valid),
        batch_size=1000,
    )


def _text(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _encoder(field: models.Field):
    kind = field.get_internal_type()
    if kind == "BooleanField":
        return lambda v: "\\N" if v is None else ("t" if v else "f")
    if kind == "JSONField":
        return lambda v: "\\N" if v is None else _json.encode(v).decode().replace("\\", "\\\\")
    if kind in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return lambda v: "\\N" if v is None else _text(v)
    if kind == "DecimalField" or kind.endswith("IntegerField") or kind == "FloatField":
        return lambda v: "\\N" if v is None else str(v)
    return lambda v: "\\N" if v is None else _text(str(v))


def _copy(model, target: Target, run_id, seq: int, valid: list) -> None:
    meta = target.model._meta
    names = target.fields
    encoders = [_encoder(meta.get_field(n)) for n in names]
    prefix = f"{run_id}\t{seq}\t"
    out = io.StringIO()
    write_line = out.write
    for index, key, rec in valid:
        cells = [enc(getattr(rec, n)) for enc, n in zip(encoders, names)]
        write_line(f"{prefix}{index}\t{_text(key)}\t" + "\t".join(cells) + "\n")
    data = io.BytesIO(out.getvalue().encode())
    q = connection.ops.quote_name
    cols = ", ".join(["run_id", "seq", q("index"), "key"] + [q(model._meta.get_field(n).column) for n in names])
    with connection.cursor() as cursor:
        # size positionally: with DEBUG on, Django's CursorDebugWrapper.copy_expert(sql, file, *args) takes no keywords
        cursor.copy_expert(f"COPY {q(model._meta.db_table)} ({cols}) FROM STDIN", data, 1 << 20)


def row_values(target: Target, row: models.Model) -> dict:
    """A staged row as the JSON-ready record it came from (for a duplicate_key error)."""
    out = {target.key_field: row.key}
    for name in target.fields:
        value = getattr(row, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    return out
