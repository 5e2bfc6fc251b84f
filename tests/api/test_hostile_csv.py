"""CSV injection through the errors CSV (`GET runs/{id}/errors/?format=csv`): whatever a customer
sent, no cell a spreadsheet opens starts with = + - @ (or tab / CR, which some strip first), in
the header, in the records' values, in the error message or in a raw non-object record."""

import csv
import io

import pytest

from tests.support import product
from tests.support.api import API, sync_over_api

PAYLOADS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil.example","x")',
    "=cmd|' /C calc'!A0",
    "-2+3",
    "+Hello",
    "@",
]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile_run(api, integration, tables):
    integration.max_error_rate = 1.0
    integration.save()
    batch = []
    for i, text in enumerate(PAYLOADS):
        batch.append(product(f"{text}-{i}", name=text, price=text))  # invalid price, key and name hostile
        batch.append(product(f"U-{i}", **{text: "x", "colour": text}))  # a hostile unknown field name
    batch += PAYLOADS  # records that are not objects (parse_error, kept raw)
    run = sync_over_api(api, [batch], mode="incremental")
    assert run["counts"]["failed"] == len(batch)
    return run


def test_no_cell_of_the_errors_csv_is_a_formula(api, hostile_run, tables):
    response = api.get(f"{API}/runs/{hostile_run['id']}/errors/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(DANGEROUS)], [c for c in cells if c.startswith(DANGEROUS)][:5]
    header = rows[0]
    assert "'=1+1" in header and "'@SUM(A1)" in header  # hostile field names neutralised in the header too
    data = [dict(zip(header, row)) for row in rows[1:]]
    by_name = {r["name"]: r for r in data if r["error_code"] == "invalid"}
    assert set(by_name) == {"'" + p for p in PAYLOADS if p.startswith(DANGEROUS)} | {
        p for p in PAYLOADS if not p.startswith(DANGEROUS)
    }
    raw = [r["error_record"] for r in data if r["error_code"] == "parse_error"]
    assert raw == ["'" + p if p.startswith(DANGEROUS) else p for p in PAYLOADS]
    messages = [r["error_message"] for r in data if r["error_code"] == "unknown_field"]
    assert messages and all(not m.startswith(DANGEROUS) for m in messages)
    tables.assert_unchanged()


def test_neutralised_cells_keep_their_text(api, hostile_run):
    """The leading quote is the only change: strip it and the customer has what was sent."""
    response = api.get(f"{API}/runs/{hostile_run['id']}/errors/?format=csv&code=parse_error")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
    raw = [row[rows[0].index("error_record")] for row in rows[1:]]
    assert [c[1:] if c.startswith("'") else c for c in raw] == PAYLOADS


def test_errors_json_is_not_altered(api, hostile_run):
    """Neutralising is for the CSV only: the JSON list returns the records exactly as sent."""
    body = api.get(f"{API}/runs/{hostile_run['id']}/errors/?code=parse_error&page_size=100").json()
    assert [e["record"] for e in body["results"]] == PAYLOADS
