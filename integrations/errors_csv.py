"""The errors CSV of a run (SPEC section 4), one implementation for the API, the admin and the CLI.

It is a file to fix and send back as it is: its columns are the target's fields in schema order
(the key first), then the other fields the records carried (unknown ones, field-map names), then
`error_code`, `error_message`, `error_fields` (the per-field reasons), `error_seq`, `error_index`;
a record that was not an object goes whole into a last `error_record` column. Every upload ignores
columns named `error_*` (ingest.files.iter_csv), so those columns go back unread. JSON fields hold
their JSON text, which a CSV upload reads back. Text a spreadsheet would run as a formula gets a
leading quote (CSV injection); a cell that is a plain number (`-1.00`, `+3`, `1e5`) is no formula
and stays as it is, so a fixed file sends back the numbers it got. Streamed: one pass finds the
columns, a second writes the rows.

Fields the target does not know (nor the integration's field map) get a column each only for the
first MAX_UNKNOWN_COLUMNS of them; the others go, per row, into one `error_other_fields` column
as a JSON object. Otherwise the file grows as records x distinct unknown fields (5,000 records,
each with a field of its own: 25 MB of empty cells for 383 KB in)."""

import csv
import json
import re

from .ingest.files import IGNORED_COLUMN_PREFIX as ERROR_PREFIX
from .targets import get_target

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# what a spreadsheet reads as a number, never as a formula: neutralising it would change the value
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
MAX_UNKNOWN_COLUMNS = 20
# the columns the file adds; an upload ignores every column whose name starts with ERROR_PREFIX
ERROR_COLUMNS = tuple(ERROR_PREFIX + name for name in ("code", "message", "fields", "seq", "index"))


def cell(value) -> str:
    """Booleans as true/false, objects and lists as JSON, formula-like text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def fields_text(fields) -> str:
    """The per-field reasons as one readable cell: `price: At most 2 decimal places.; currency: ...`."""
    if not isinstance(fields, dict):
        return ""
    parts = []
    for name, reasons in fields.items():
        text = " ".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons)
        parts.append(text if name == "__all__" else f"{name}: {text}")
    return "; ".join(parts)


class _Echo:
    def write(self, value):
        return value


def error_csv_rows(errors, *, with_run: bool = False, integration=None):
    """CSV lines of a RecordError queryset; `with_run` leads with a `run` column (several runs).
    `integration`: the run's, so that a run without errors still gets its target's columns."""
    schema_fields, known = _target_fields(errors, integration)
    columns: dict[str, None] = dict.fromkeys(schema_fields)
    unknown = 0
    folded = False  # some record has a field beyond the unknown ones that get a column
    raw_column = False
    for record in errors.values_list("record", flat=True).iterator(chunk_size=2000):
        if isinstance(record, dict):
            for name in map(str, record):
                if name in columns:
                    continue
                if name in known:
                    columns[name] = None
                elif unknown < MAX_UNKNOWN_COLUMNS:
                    columns[name] = None
                    unknown += 1
                else:
                    folded = True
        elif record is not None:
            raw_column = True
    names = list(columns)
    writer = csv.writer(_Echo())
    yield writer.writerow(
        (["run"] if with_run else [])
        + [cell(n) for n in names]
        + list(ERROR_COLUMNS)
        + (["error_other_fields"] if folded else [])
        + (["error_record"] if raw_column else [])
    )
    rows = errors.values_list("run_id", "record", "code", "message", "fields", "seq", "index")
    for run_id, record, code, message, fields, seq, index in rows.iterator(chunk_size=2000):
        other = ""
        if isinstance(record, dict):
            row, raw = [cell(record.get(n)) for n in names], ""
            if folded:
                rest = {k: v for k, v in record.items() if str(k) not in columns}
                other = cell(rest) if rest else ""
        else:
            row, raw = [""] * len(names), cell(record)
        lead = [str(run_id)] if with_run else []
        yield writer.writerow(
            lead
            + row
            + [code, cell(message), cell(fields_text(fields)), seq, index]
            + ([other] if folded else [])
            + ([raw] if raw_column else [])
        )


def _target_fields(errors, integration=None) -> tuple[list[str], set[str]]:
    """The fields of the errors' targets in schema order (each target's key first), and every name
    those targets and their integrations' field maps know."""
    ordered: dict[str, None] = {}
    known: set[str] = set()
    if integration is not None:
        pairs = [(integration.target, integration.field_map)]
    else:
        pairs = errors.order_by().values_list("run__integration__target", "run__integration__field_map").distinct()
    for target_name, field_map in sorted(pairs, key=lambda pair: pair[0]):
        try:
            target = get_target(target_name)
        except LookupError:  # a target no longer registered: its fields count as unknown
            target = None
        if target is not None:
            ordered.update(dict.fromkeys(n for n in target.struct_fields if n in target.keys))
            ordered.update(dict.fromkeys(target.fields))
        known.update(field_map or {})
    return list(ordered), known
