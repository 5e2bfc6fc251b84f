"""A run's change journal as CSV (SPEC 13, `GET runs/{id}/changes/?format=csv`): `op`, the key's
fields, then `before_<field>` and `after_<field>` for every synced field of the target. An update
fills only the fields that changed; cells are neutralised like the errors' CSV."""

import csv

from .errors_csv import _Echo, cell
from .ingest.journal import changed_fields
from .targets import get_target


def change_csv_rows(changes, *, integration):
    target = get_target(integration.target)
    writer = csv.writer(_Echo())
    names = list(target.fields)
    yield writer.writerow(["op", *target.keys, *(f"before_{n}" for n in names), *(f"after_{n}" for n in names)])
    for op, key, before, after in changes.values_list("op", "key", "before", "after").iterator(chunk_size=2000):
        before, after = changed_fields(before, after)
        parts = [key.get(n) for n in target.keys] if target.composite and isinstance(key, dict) else [key]
        yield writer.writerow(
            [op, *(cell(p) for p in parts)]
            + [cell((before or {}).get(n)) for n in names] + [cell((after or {}).get(n)) for n in names]
        )
