"""The engine against a plain-Python reference model of SPEC section 3 (hypothesis).

Each example: random rows already in the table, random records (valid, invalid of each kind,
duplicates, keyless, unknown fields, not objects), cut into random batches with random `deletes`,
a random mode, dry-run flag, `max_error_rate` and `max_deletes_percent`; then, when the run is
held, possibly an approval. The run goes through the services with the tasks inline, exactly as a
worker would run them; the model says what the final table, the status, the counts and the record
errors must be. Another customer holds rows under the same keys: they must never change.

One customer, integration and bystander are made once per test; each example resets the target
rows and the runs, so 200 examples stay in seconds on both databases.
"""

import gzip
import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from catalog.models import Product
from integrations import services
from integrations.ingest import staging
from integrations.models import RecordError, SyncRun
from integrations.targets import get_target

pytestmark = pytest.mark.slow  # hundreds of hypothesis examples, each a run through the engine
S = SyncRun.Status

# --- the values a row can hold --------------------------------------------------------------------

# normalised row values (name, price, currency, quantity, active, attributes), as the table holds them
VARIANTS = [
    ("Chair", Decimal("9.99"), "EUR", 0, True, {}),
    ("Chair", Decimal("10.50"), "EUR", 3, True, {}),
    ("Table", Decimal("0.00"), "USD", 0, False, {"c": 1, "tags": ["x"]}),
]
TABLE_KEYS = [f"K{i:02d}" for i in range(24)]  # enough rows for the guard's "more than 10"
RECORD_KEYS = TABLE_KEYS[:8] + ["N1", "N2"]  # records mostly hit existing rows, sometimes new ones
LONG_KEY = "L" * 65  # too long for the sku field, still a readable key (<= 255)
HUGE_KEY = "H" * 300  # too long to be read as a key at all


@dataclass(frozen=True)
class Rec:
    """A generated record: what is sent, and what SPEC section 5 says it is."""

    raw: object
    code: str | None  # None: valid
    key: str | None  # the readable key, None when none can be read
    values: tuple | None = None  # the normalised row values of a valid record


@st.composite
def valid_record(draw, key=None):
    key = key or draw(st.sampled_from(RECORD_KEYS))
    variant = VARIANTS[draw(st.integers(0, len(VARIANTS) - 1))]
    name, price, currency, quantity, active, attributes = variant
    raw = {"sku": key, "name": name, "currency": currency}
    # the same decimal as a string or as a JSON number (SPEC 5): both are the same row value
    raw["price"] = draw(st.sampled_from([str(price), float(price)]))
    # defaults may be left out or sent; 3 may come as 3.0
    if quantity or draw(st.booleans()):
        raw["quantity"] = draw(st.sampled_from([quantity, float(quantity)]))
    if not active or draw(st.booleans()):
        raw["active"] = active
    if attributes or draw(st.booleans()):
        raw["attributes"] = attributes
    return Rec(raw, None, key, variant)


INVALID_CHANGES = [
    {"price": -1},
    {"price": "1.234"},
    {"price": "NaN"},
    {"price": 10_000_000_000},
    {"currency": "eur"},
    {"quantity": 1.5},
    {"quantity": -1},
    {"name": ""},
    {"active": "yes"},
    {"attributes": [1]},
]


@st.composite
def failing_record(draw):
    kind = draw(
        st.sampled_from(
            ["invalid", "missing_name", "long_sku", "huge_sku", "unknown_field", "missing_key", "parse_error"]
        )
    )
    base = dict(draw(valid_record()).raw)
    key = base["sku"]
    if kind == "invalid":
        base.update(draw(st.sampled_from(INVALID_CHANGES)))
        return Rec(base, "invalid", key)
    if kind == "missing_name":
        del base["name"]
        return Rec(base, "invalid", key)
    if kind == "long_sku":
        base["sku"] = LONG_KEY
        return Rec(base, "invalid", LONG_KEY)
    if kind == "huge_sku":
        base["sku"] = HUGE_KEY
        return Rec(base, "invalid", None)
    if kind == "unknown_field":
        base["colour"] = "red"
        return Rec(base, "unknown_field", key)
    if kind == "missing_key":
        change = draw(st.sampled_from(["absent", 5, "", "   ", None, ["K00"]]))
        if change == "absent":
            del base["sku"]
        else:
            base["sku"] = change
        return Rec(base, "missing_key", None)
    raw = draw(st.sampled_from(["not an object", 42, [1, 2], None, True]))
    return Rec(raw, "parse_error", None)


any_record = st.one_of(valid_record(), valid_record(), valid_record(), failing_record())


@st.composite
def scenario(draw):
    size = draw(st.integers(0, len(TABLE_KEYS)))
    keys = draw(st.permutations(TABLE_KEYS))[:size]
    table = {k: draw(st.integers(0, len(VARIANTS) - 1)) for k in keys}
    records = draw(st.lists(any_record, max_size=10))
    n_batches = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), min_size=n_batches - 1, max_size=n_batches - 1)))
    bounds = [0, *cuts, len(records)]
    batches = [records[a:b] for a, b in zip(bounds, bounds[1:])]
    deletes = [draw(st.lists(st.sampled_from(RECORD_KEYS + TABLE_KEYS[8:11]), max_size=3)) for _ in batches]
    return {
        "table": {k: VARIANTS[v] for k, v in table.items()},
        "batches": batches,
        "deletes": deletes,
        "mode": draw(st.sampled_from(["full", "incremental"])),
        "dry_run": draw(st.sampled_from([False, False, True])),
        "max_error_rate": draw(st.sampled_from([0.0, 0.2, 0.25, 0.5, 1.0, 1.0])),
        "max_deletes_percent": draw(st.sampled_from([0.0, 10.0, 20.0, 50.0, 100.0])),
        "approve": draw(st.sampled_from([True, True, False])),
        "gzip": draw(st.booleans()),
    }


# --- the reference model of SPEC section 3 ---------------------------------------------------------


@dataclass
class Expected:
    status: str
    counts: dict
    table: dict
    errors: set = field(default_factory=set)  # {(seq, index, key, code)}
    snapshot_skipped: bool = False


def reference(sc: dict, *, waive_guard: bool = False) -> Expected:
    table = dict(sc["table"])
    errors: set = set()
    applied: dict[str, tuple] = {}  # key -> values of the first valid record with it
    failed_keys: set[str] = set()
    seen: set[str] = set()  # keys that appeared earlier in the run, valid or not
    keyless = 0
    received = 0
    listed: set[str] = set()
    for seq, (batch, deletes) in enumerate(zip(sc["batches"], sc["deletes"]), start=1):
        listed |= set(deletes)
        for index, rec in enumerate(batch):
            received += 1
            # rule 2: a valid record whose key appeared earlier is a duplicate; the first one stays
            code = rec.code if rec.code or rec.key not in seen else "duplicate_key"
            if code:
                errors.add((seq, index, rec.key, code))
                if rec.key is None:
                    keyless += 1
                else:
                    failed_keys.add(rec.key)
            else:
                applied[rec.key] = rec.values
            if rec.key is not None:
                seen.add(rec.key)
    failed = len(errors)
    zero = {"received": received, "created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": failed}

    # rule 3: the error policy first; equal is within
    if received and Fraction(failed, received) > Fraction(str(sc["max_error_rate"])):
        return Expected(S.FAILED, zero, table, errors)

    # rule 4: explicit deletes (a record of the run with the key wins) and, in full mode, the snapshot
    explicit = {k for k in table if k in listed and k not in applied}
    snapshot: set[str] = set()
    skipped = sc["mode"] == "full" and keyless > 0
    if sc["mode"] == "full" and not keyless:
        snapshot = {k for k in table if k not in applied and k not in failed_keys and k not in listed}

    created = sum(1 for k in applied if k not in table)
    unchanged = sum(1 for k, v in applied.items() if table.get(k) == v)
    updated = len(applied) - created - unchanged
    counts = {
        "received": received,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "deleted": len(explicit) + len(snapshot),
        "failed": failed,
    }

    # rule 5: the deletion guard counts snapshot deletions only
    if snapshot and not waive_guard:
        current = len(table)
        over_share = len(snapshot) * 100 > Fraction(str(sc["max_deletes_percent"])) * current and len(snapshot) > 10
        if over_share or len(snapshot) == current:
            return Expected(S.NEEDS_REVIEW, counts, table, errors, skipped)

    status = S.PARTIAL if failed else S.SUCCEEDED
    if sc["dry_run"]:
        return Expected(status, counts, table, errors, skipped)
    for k in explicit | snapshot:
        del table[k]
    table.update(applied)
    return Expected(status, counts, table, errors, skipped)


# --- the engine --------------------------------------------------------------------------------------


def table_of(customer) -> dict:
    return {
        p.sku: (p.name, p.price, p.currency, p.quantity, p.active, p.attributes)
        for p in Product.objects.filter(customer=customer)
    }


def reset(customer, integration, sc: dict) -> None:
    target = get_target("catalog.product")
    run_ids = list(SyncRun.objects.filter(integration=integration).values_list("pk", flat=True))
    if run_ids:  # a held run keeps its staged rows
        staging.ensure_table(target).objects.filter(run_id__in=run_ids).delete()
    SyncRun.objects.filter(integration=integration).delete()
    Product.objects.filter(customer=customer).delete()
    Product.objects.bulk_create(
        Product(
            customer=customer, sku=k, name=v[0], price=v[1], currency=v[2], quantity=v[3], active=v[4], attributes=v[5]
        )
        for k, v in sc["table"].items()
    )
    integration.max_error_rate = sc["max_error_rate"]
    integration.max_deletes_percent = sc["max_deletes_percent"]
    integration.save(update_fields=["max_error_rate", "max_deletes_percent"])


def run_engine(integration, sc: dict) -> SyncRun:
    run, _ = services.run_create(integration=integration, mode=sc["mode"], dry_run=sc["dry_run"])
    for seq, (batch, deletes) in enumerate(zip(sc["batches"], sc["deletes"]), start=1):
        body = json.dumps({"seq": seq, "records": [r.raw for r in batch], "deletes": deletes}).encode()
        encoding = "gzip" if sc["gzip"] else ""
        services.batch_receive(
            run=run,
            seq=seq,
            body=gzip.compress(body) if encoding else body,
            content_type="application/json",
            content_encoding=encoding,
        )
    services.run_complete(run=run)
    run.refresh_from_db()
    return run


def errors_of(run) -> set:
    return set(RecordError.objects.filter(run=run).values_list("seq", "index", "key", "code"))


def check(run, expected: Expected, customer) -> None:
    assert run.status == expected.status, run.message
    assert run.counts == expected.counts, run.message
    assert errors_of(run) == expected.errors
    assert table_of(customer) == expected.table
    if run.status != S.FAILED:  # rule 7 (a failed run counts only received and failed: rule 3)
        c = run.counts
        assert c["received"] == c["created"] + c["updated"] + c["unchanged"] + c["failed"]
    if expected.snapshot_skipped and run.status in (S.SUCCEEDED, S.PARTIAL):
        assert "snapshot deletion skipped" in run.message.lower()


def test_engine_matches_the_reference_model(transactional_db):
    customer = services.customer_create(slug="prop", name="Property")
    integration = services.integration_create(customer=customer, slug="products", target="catalog.product")
    bystander = services.customer_create(slug="bystander", name="Bystander")
    Product.objects.bulk_create(
        Product(customer=bystander, sku=k, name="Theirs", price=Decimal("1.00"), currency="GBP")
        for k in TABLE_KEYS + ["N1", "N2"]
    )
    theirs = table_of(bystander)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(sc=scenario())
    def engine_matches(sc):
        note(f"scenario: {sc!r}")
        reset(customer, integration, sc)
        run = run_engine(integration, sc)
        check(run, reference(sc), customer)
        if run.status == S.NEEDS_REVIEW and sc["approve"] and not sc["dry_run"]:
            # approval applies against the table as it is now, with the guard waived
            services.run_review(run=run, approve=True, user="prop")
            run.refresh_from_db()
            check(run, reference(sc, waive_guard=True), customer)
        assert table_of(bystander) == theirs

    engine_matches()


# --- the same model, on a composite key: crm.order_line (order_no, line) -----------------------------

LINE_VARIANTS = [  # (sku, quantity, unit_price) as the table holds them
    ("S-1", 1, Decimal("2.50")),
    ("S-1", 2, Decimal("2.50")),
    ("S-2", -1, Decimal("0.00")),
]
LINE_TABLE_KEYS = [(order, n) for order in ("A", "B", "C") for n in range(1, 9)]
LINE_RECORD_KEYS = LINE_TABLE_KEYS[:8] + [("A", 9), ("N", 1)]


@st.composite
def valid_line(draw):
    order_no, n = draw(st.sampled_from(LINE_RECORD_KEYS))
    variant = LINE_VARIANTS[draw(st.integers(0, len(LINE_VARIANTS) - 1))]
    sku, quantity, price = variant
    raw = {
        "order_no": order_no,
        "line": n,
        "sku": sku,
        "quantity": quantity,
        "unit_price": draw(st.sampled_from([str(price), float(price)])),
    }
    return Rec(raw, None, (order_no, n), variant)


@st.composite
def failing_line(draw):
    kind = draw(st.sampled_from(["invalid", "unknown_field", "missing_key", "parse_error"]))
    base = dict(draw(valid_line()).raw)
    key = (base["order_no"], base["line"])
    if kind == "invalid":
        base.update(draw(st.sampled_from([{"quantity": "x"}, {"unit_price": "1.234"}, {"sku": ""}])))
        return Rec(base, "invalid", key)
    if kind == "unknown_field":
        base["colour"] = "red"
        return Rec(base, "unknown_field", key)
    if kind == "missing_key":
        change = draw(
            st.sampled_from(
                [("line", None), ("line", "1"), ("line", -1), ("order_no", ""), ("order_no", 5), ("order_no", None)]
            )
        )
        if change[1] is None:
            del base[change[0]]
        else:
            base[change[0]] = change[1]
        return Rec(base, "missing_key", None)
    return Rec(draw(st.sampled_from(["not an object", 42, [1, 2]])), "parse_error", None)


@st.composite
def line_scenario(draw):
    size = draw(st.integers(0, len(LINE_TABLE_KEYS)))
    keys = draw(st.permutations(LINE_TABLE_KEYS))[:size]
    records = draw(st.lists(st.one_of(valid_line(), valid_line(), failing_line()), max_size=10))
    n_batches = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), min_size=n_batches - 1, max_size=n_batches - 1)))
    bounds = [0, *cuts, len(records)]
    batches = [records[a:b] for a, b in zip(bounds, bounds[1:])]
    deletes = [draw(st.lists(st.sampled_from(LINE_RECORD_KEYS + LINE_TABLE_KEYS[8:11]), max_size=3)) for _ in batches]
    return {
        "table": {k: LINE_VARIANTS[draw(st.integers(0, len(LINE_VARIANTS) - 1))] for k in keys},
        "batches": batches,
        "deletes": deletes,
        "mode": draw(st.sampled_from(["full", "incremental"])),
        "dry_run": draw(st.sampled_from([False, False, True])),
        "max_error_rate": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
        "max_deletes_percent": draw(st.sampled_from([0.0, 20.0, 100.0])),
        "approve": draw(st.booleans()),
        "gzip": False,
    }


def test_engine_matches_the_reference_model_on_a_composite_key(transactional_db):
    from crm.models import OrderLine

    customer = services.customer_create(slug="prop", name="Property")
    integration = services.integration_create(customer=customer, slug="lines", target="crm.order_line")
    bystander = services.customer_create(slug="bystander", name="Bystander")
    OrderLine.objects.bulk_create(
        OrderLine(customer=bystander, order_no=o, line=n, sku="X", quantity=0, unit_price=Decimal("1.00"))
        for o, n in set(LINE_RECORD_KEYS + LINE_TABLE_KEYS)
    )

    def lines_of(owner):
        return {
            (o.order_no, o.line): (o.sku, o.quantity, o.unit_price) for o in OrderLine.objects.filter(customer=owner)
        }

    def line_errors(run):
        return {
            (seq, index, None if key is None else (key["order_no"], key["line"]), code)
            for seq, index, key, code in RecordError.objects.filter(run=run).values_list("seq", "index", "key", "code")
        }

    def verify(run, expected):
        assert run.status == expected.status, run.message
        assert run.counts == expected.counts, run.message
        assert line_errors(run) == expected.errors
        assert lines_of(customer) == expected.table

    theirs = lines_of(bystander)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(sc=line_scenario())
    def engine_matches(sc):
        note(f"scenario: {sc!r}")
        run_ids = list(SyncRun.objects.filter(integration=integration).values_list("pk", flat=True))
        if run_ids:
            staging.ensure_table(get_target("crm.order_line")).objects.filter(run_id__in=run_ids).delete()
        SyncRun.objects.filter(integration=integration).delete()
        OrderLine.objects.filter(customer=customer).delete()
        OrderLine.objects.bulk_create(
            OrderLine(customer=customer, order_no=o, line=n, sku=v[0], quantity=v[1], unit_price=v[2])
            for (o, n), v in sc["table"].items()
        )
        integration.max_error_rate = sc["max_error_rate"]
        integration.max_deletes_percent = sc["max_deletes_percent"]
        integration.save(update_fields=["max_error_rate", "max_deletes_percent"])
        wire = dict(sc, deletes=[[{"order_no": o, "line": n} for o, n in batch] for batch in sc["deletes"]])
        run = run_engine(integration, wire)
        verify(run, reference(sc))
        if run.status == S.NEEDS_REVIEW and sc["approve"] and not sc["dry_run"]:
            services.run_review(run=run, approve=True, user="prop")
            run.refresh_from_db()
            verify(run, reference(sc, waive_guard=True))
        assert lines_of(bystander) == theirs

    engine_matches()
