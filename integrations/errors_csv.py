"""The errors CSV of a run (SPEC section 4), one implementation for the API and the admin.

Columns: the records' own fields, in first-seen order (so fixed rows can be sent again), then
`error_code` and `error_message`; a record that was not an object goes whole into a last
`error_record` column. Text a spreadsheet would run as a formula gets a leading quote (CSV
injection). Streamed: one pass finds the columns, a second writes the rows.

Fields the target does not know (nor the integration's field map) get a column each only for the
first MAX_UNKNOWN_COLUMNS of them; the others go, per row, into one `error_other_fields` column
as a JSON object. Otherwise the file grows as records x distinct unknown fields (5,000 records,
each with a field of its own: 25 MB of empty cells for 383 KB in)."""

import csv
import json

from .targets import get_target

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_UNKNOWN_COLUMNS = 20


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
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value):
        return value


def error_csv_rows(errors, *, with_run: bool = False):
    """CSV lines of a RecordError queryset; `with_run` leads with a `run` column (several runs)."""
    known = _known_fields(errors)
    columns: dict[str, None] = {}
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
    yield writer.writerow((["run"] if with_run else []) + [cell(n) for n in names] + ["error_code", "error_message"]
                          + (["error_other_fields"] if folded else []) + (["error_record"] if raw_column else []))
    rows = errors.values_list("run_id", "record", "code", "message").iterator(chunk_size=2000)
    for run_id, record, code, message in rows:
        other = ""
        if isinstance(record, dict):
            row, raw = [cell(record.get(n)) for n in names], ""
            if folded:
                rest = {k: v for k, v in record.items() if str(k) not in columns}
                other = cell(rest) if rest else ""
        else:
            row, raw = [""] * len(names), cell(record)
        lead = [str(run_id)] if with_run else []
        yield writer.writerow(lead + row + [code, cell(message)] + ([other] if folded else [])
                              + ([raw] if raw_column else []))


def _known_fields(errors) -> set[str]:
    """The fields the errors' targets know, and the names their integrations' field maps take."""
    known: set[str] = set()
    pairs = errors.order_by().values_list("run__integration__target", "run__integration__field_map").distinct()
    for target, field_map in pairs:
        try:
            known.update(get_target(target).struct_fields)
        except LookupError:  # a target no longer registered: its fields count as unknown
            pass
        known.update(field_map or {})
    return known
