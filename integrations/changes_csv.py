"""A run's change journal as CSV (SPEC 13, `GET runs/{id}/changes/?format=csv`): `op`, the key's
fields, then `before_<field>` and `after_<field>` for every synced field of the target. An update
fills only the fields that changed; a created row's `after` is read as the API reads it
(journal.fill_created); cells are neutralised like the errors' CSV."""

import csv

from .errors_csv import _Echo, cell
from .ingest.journal import changed_fields, fill_created
from .targets import get_target


def change_csv_rows(changes, *, integration):
    target = get_target(integration.target)
    writer = csv.writer(_Echo())
    names = list(target.fields)
    yield writer.writerow(["op", *target.keys, *(f"before_{n}" for n in names), *(f"after_{n}" for n in names)])
    for chunk in _chunks(changes.only("op", "key", "before", "after", "digest").iterator(chunk_size=2000), 2000):
        for change in fill_created(target, integration.customer_id, chunk):
            before, after = changed_fields(change.before, change.after)
            key = change.key
            parts = [key.get(n) for n in target.keys] if target.composite and isinstance(key, dict) else [key]
            yield writer.writerow(
                [change.op, *(cell(p) for p in parts)]
                + [cell((before or {}).get(n)) for n in names]
                + [cell((after or {}).get(n)) for n in names]
            )


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
