"""The apply of an undo run (SPEC 13): the undone run's journal, played backwards.

Runs inside the undo run's one transaction, after the same locks as any apply (rule 6, and the
owner's rows of the target). Per journal entry: a deleted row comes back with its synced fields
(other columns take the model's defaults), an updated row gets its old values, a created row is
deleted, each only when the row is still as the run left it (a deleted row still absent); a row
changed since is left as it is and becomes a conflict in the undo's message and journal. The
undo run journals what it did, so an undo can itself be looked at. Bounded chunks: one read of
the target and at most three writes per chunk, never a query per key.
"""

import json

from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..models import RunChange, SyncRun
from ..targets import Target
from .apply import Outcome
from .journal import CHUNK, json_value, pg_digest, python_values

Op = RunChange.Op
Status = SyncRun.Status


def plan(undone: SyncRun, target: Target, owner_id, *, undo_run: SyncRun | None = None) -> dict:
    """What undoing `undone` does to the table as it is now: counts {created, updated, deleted,
    conflicts} and up to 20 conflicting keys. With `undo_run`, it is done and journaled."""
    counts = {"created": 0, "updated": 0, "deleted": 0, "conflicts": 0}
    conflicts: list = []
    model = target.model
    meta = model._meta
    attnames = [meta.get_field(n).attname for n in target.fields]
    owner_attr = f"{target.owner_field}_id"
    changes = RunChange.objects.filter(run=undone, conflict=False).order_by("id")
    last = 0
    while True:
        chunk = list(changes.filter(id__gt=last).values_list("id", "op", "key", "before", "after", "digest")[:CHUNK])
        if not chunk:
            break
        last = chunk[-1][0]
        keys = [target.parse_key(key) for _, _, key, _, _, _ in chunk]
        with_digest = any(digest is not None for *_, digest in chunk)
        current = _current(target, owner_id, [k for k in keys if k is not None], attnames, with_digest=with_digest)
        inserts, updates, removals, entries = [], [], [], []
        now = timezone.now()
        for (_, op, key_json, before, after, digest), key in zip(chunk, keys):
            row = current.get(key)
            if op == Op.DELETED:
                ok = row is None
            elif digest is not None:  # a created row journaled by the digest of what the run wrote
                ok = row is not None and row[2] == digest
                if ok:  # the undo's journal shows the row it deletes
                    after = {name: json_value(row[1][attname]) for name, attname in zip(target.fields, attnames)}
            else:
                ok = row is not None and row[1] == python_values(target, after or {})
            if not ok:
                counts["conflicts"] += 1
                if len(conflicts) < 20:
                    conflicts.append(key_json)
                entries.append(
                    RunChange(
                        run=undo_run,
                        op=_inverse(op),
                        key=key_json,
                        before=after,
                        after=before,
                        conflict=True,
                        digest=digest,
                    )
                )
                continue
            if op == Op.DELETED:
                counts["created"] += 1
                parts = key if target.composite else (key,)
                obj = model(**{owner_attr: owner_id, **dict(zip(target.keys, parts)), **python_values(target, before)})
                if target.touch_field:
                    setattr(obj, target.touch_field, now)
                inserts.append(obj)
            elif op == Op.UPDATED:
                counts["updated"] += 1
                obj = model(pk=row[0], **python_values(target, before))
                if target.touch_field:
                    setattr(obj, target.touch_field, now)
                updates.append(obj)
            else:
                counts["deleted"] += 1
                removals.append(row[0])
            entries.append(RunChange(run=undo_run, op=_inverse(op), key=key_json, before=after, after=before))
        if undo_run is None:
            continue
        manager = model._base_manager
        if removals:
            manager.filter(pk__in=removals).delete()
        if updates:
            _update(target, updates, attnames)
        if inserts:
            manager.bulk_create(inserts, batch_size=500)
        RunChange.objects.bulk_create(entries, batch_size=500)
    return {**counts, "conflict_keys": conflicts}


def apply(run: SyncRun, target: Target) -> Outcome:
    """The undo run `run` (source `undo`) applied: its Outcome."""
    undone = run.undoes
    if undone is None or undone.changes_purged_at is not None:
        return Outcome(Status.FAILED, message="nothing to undo: the run's journal is gone. Nothing was applied.")
    done = plan(undone, target, run.integration.customer_id, undo_run=run)
    message = (
        f"undo of run {undone.pk}: {done['created']} deleted row(s) restored, {done['updated']} updated "
        f"row(s) reverted, {done['deleted']} created row(s) deleted."
    )
    if done["conflicts"]:
        shown = ", ".join(map(str, done["conflict_keys"]))
        message += (
            f" {done['conflicts']} row(s) changed since the run were left as they are (conflicts, see "
            f"changes): {shown}{' ...' if done['conflicts'] > len(done['conflict_keys']) else ''}."
        )
    return Outcome(
        Status.PARTIAL if done["conflicts"] else Status.SUCCEEDED,
        received=done["created"] + done["updated"],
        created=done["created"],
        updated=done["updated"],
        deleted=done["deleted"],
        message=message,
    )


def _update(target: Target, rows: list, attnames: list) -> None:
    """Give these rows (model instances holding their pk and old values) their values back. On
    PostgreSQL one UPDATE ... FROM jsonb_to_recordset per chunk (bulk_update's CASE per field
    took seconds per 10,000 rows); elsewhere bulk_update."""
    model = target.model
    touch = [target.touch_field] if target.touch_field else []
    if connection.vendor != "postgresql":
        model._base_manager.bulk_update(rows, attnames + touch, batch_size=500)
        return
    meta = model._meta
    q = connection.ops.quote_name
    fields = [meta.get_field(a) for a in attnames]
    pk = meta.pk
    columns = ", ".join(f"{q(f.column)} {f.db_type(connection)}" for f in [pk, *fields])
    sets = [f"{q(f.column)} = v.{q(f.column)}" for f in fields]
    sets += [f"{q(meta.get_field(name).column)} = now()" for name in touch]
    data = [
        {pk.column: obj.pk, **{f.column: json_value(f.get_prep_value(getattr(obj, f.attname))) for f in fields}}
        for obj in rows
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(meta.db_table)} t SET {', '.join(sets)} FROM jsonb_to_recordset(%s::jsonb) AS v({columns}) "
            f"WHERE t.{q(pk.column)} = v.{q(pk.column)}",
            [json.dumps(data)],
        )


def _inverse(op: str) -> str:
    return {Op.CREATED: Op.DELETED, Op.DELETED: Op.CREATED}.get(op, Op.UPDATED)


def _current(target: Target, owner_id, keys: list, attnames: list, *, with_digest: bool = False) -> dict:
    """{key: (pk, {attname: value}, digest or None)} of the owner's rows with these keys (one query;
    the digest, journal.pg_digest, computed by PostgreSQL when asked for)."""
    rows = target.owner_rows(owner_id)
    if not keys:
        return {}
    digest = []
    if with_digest:
        rows = rows.annotate(
            _digest=RawSQL(pg_digest(target, connection.ops.quote_name(target.model._meta.db_table)), [])
        )
        digest = ["_digest"]
    for i, name in enumerate(target.keys):
        parts = {k[i] for k in keys} if target.composite else set(keys)
        rows = rows.filter(**{f"{name}__in": parts})
    wanted = set(keys)
    out = {}
    width = len(target.keys)
    for row in rows.values_list("pk", *target.keys, *attnames, *digest):
        key = tuple(row[1 : 1 + width]) if target.composite else row[1]
        if key in wanted:
            values = row[1 + width : 1 + width + len(attnames)]
            out[key] = (row[0], dict(zip(attnames, values)), row[-1] if digest else None)
    return out
