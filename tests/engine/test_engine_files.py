"""Uploaded files: JSON array, NDJSON and CSV, split into batches and streamed."""

import io

from catalog.models import Product
from integrations import services
from integrations.models import RecordError, SyncRun

S = SyncRun.Status


def upload(integration, text, name, **kw):
    return services.upload_create(integration=integration, stream=io.BytesIO(text.encode()), filename=name, **kw)


def done(run):
    run.refresh_from_db()
    return run


def test_csv_upload_types_cells(integration, customer):
    text = (
        'sku,name,price,currency,quantity,active,attributes\nA,Alpha,1.50,EUR,3,false,"{""c"": 1}"\nB,Beta,2,EUR,,1,\n'
    )
    run = done(upload(integration, text, "products.csv"))
    assert run.status == S.SUCCEEDED, run.message
    a, b = Product.objects.filter(customer=customer).order_by("sku")
    assert (a.quantity, a.active, a.attributes) == (3, False, {"c": 1})
    assert (b.quantity, b.active, b.attributes) == (0, True, {})


def test_csv_bad_cells_are_record_errors(integration):
    integration.max_error_rate = 1
    integration.save()
    text = "sku,name,price,currency,quantity,active,attributes\nA,Alpha,x,EUR,1.5,maybe,{bad\n,NoKey,1,EUR,,,\nC,c,1,EUR,,,,extra\n"
    run = done(upload(integration, text, "p.csv"))
    codes = list(RecordError.objects.filter(run=run).order_by("index").values_list("index", "code"))
    assert codes == [(0, "invalid"), (1, "missing_key"), (2, "parse_error")]


def test_ndjson_bad_line_is_a_parse_error(integration, customer):
    integration.max_error_rate = 0.5
    integration.save()
    text = '{"sku": "A", "name": "a", "price": 1, "currency": "EUR"}\nnot json\n\n{"sku": "B", "name": "b", "price": 1, "currency": "EUR"}\n'
    run = done(upload(integration, text, "p.ndjson", mode="incremental"))
    assert run.status == S.PARTIAL
    err = RecordError.objects.get(run=run)
    assert (err.index, err.code, err.key) == (1, "parse_error", None)
    assert Product.objects.filter(customer=customer).count() == 2


def test_json_array_split_into_batches(integration, customer, settings):
    settings.INTEGRATIONS_UPLOAD_BATCH_RECORDS = 7
    items = ",".join(
        f'{{"sku": "S{i}", "name": "n", "price": 1.25, "currency": "EUR", "quantity": 1.0}}' for i in range(30)
    )
    run = done(upload(integration, f"[{items}]", "p.json"))
    assert run.status == S.SUCCEEDED and run.batches_total == 5 and run.received == 30
    assert Product.objects.filter(customer=customer).count() == 30


def test_invalid_json_file_fails_the_run_cleanly(integration, customer):
    run = done(upload(integration, '[{"sku": "A", "name": "a", "price": 1, "currency": "EUR"}, {"sku": ', "p.json"))
    assert run.status == S.FAILED and "not a valid JSON array" in run.message
    assert not Product.objects.filter(customer=customer).exists()


def test_invalid_utf8_csv_fails_the_run_cleanly(integration):
    run = services.upload_create(
        integration=integration, stream=io.BytesIO(b"sku,name\n\xff\xfe,x\n"), filename="p.csv"
    )
    run.refresh_from_db()
    assert run.status == S.FAILED and "UTF-8" in run.message


def test_unknown_extension_is_refused(integration):
    try:
        upload(integration, "x", "p.xml")
    except Exception as exc:
        assert "format" in str(exc)
    else:
        raise AssertionError("accepted an .xml file")
