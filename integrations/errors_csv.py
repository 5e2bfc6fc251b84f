"""The errors CSV of a run (SPEC section 4), one implementation for the API and the admin.

Columns: the records' own fields, in first-seen order (so fixed rows can be sent again), then
`error_code` and `error_message`; a record that was not an object goes whole into a last
`error_record` column. Text a spreadsheet would run as a formula gets a leading quote (CSV
injection). Streamed: one pass finds the columns, a second writes the rows."""

import csv
import json

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    columns: dict[str, None] = {}
    raw_column = False
    for record in errors.values_list("record", flat=True).iterator(chunk_size=2000):
        if isinstance(record, dict):
            for name in record:
                columns.setdefault(str(name), None)
        elif record is not None:
            raw_column = True
    names = list(columns)
    writer = csv.writer(_Echo())
    yield writer.writerow((["run"] if with_run else []) + [cell(n) for n in names] + ["error_code", "error_message"]
                          + (["error_record"] if raw_column else []))
    rows = errors.values_list("run_id", "record", "code", "message").iterator(chunk_size=2000)
    for run_id, record, code, message in rows:
        if isinstance(record, dict):
            row, raw = [cell(record.get(n)) for n in names], ""
        else:
            row, raw = [""] * len(names), cell(record)
        lead = [str(run_id)] if with_run else []
        yield writer.writerow(lead + row + [code, cell(message)] + ([raw] if raw_column else []))
