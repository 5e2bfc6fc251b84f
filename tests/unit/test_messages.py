"""Per-field reasons read as sentences whichever check found them: msgspec's constraint messages
(pattern, length, bounds, type) are turned into the same style as the targets' own checks, in one
place (ingest.validate.readable_message), and a target may give its own sentence per field."""

import json
from typing import Annotated

import msgspec
import pytest
from msgspec import Meta

from catalog.models import Product
from integrations.ingest.decode import decode_batch
from integrations.ingest.validate import Validator, readable_message
from integrations.targets import Target, get_target
from tests.support import product
from tests.support.api import API, sync_over_api


def reasons(target, record, content_type="application/json"):
    body = json.dumps({"seq": 1, "records": [record]}).encode()
    result = Validator(target).validate(decode_batch(body, content_type))
    assert len(result.problems) == 1, result
    return result.problems[0].fields


def test_the_issues_example_through_the_api(api, integration):
    integration.max_error_rate = 1.0
    integration.save()
    run = sync_over_api(api, [[product("A", currency="eur", price="1.005")]], mode="incremental")
    error = api.get(f"{API}/runs/{run['id']}/errors/").json()["results"][0]
    assert error["fields"] == {"price": ["At most 2 decimal places."], "currency": ["Must be 3 upper-case letters."]}


@pytest.mark.parametrize(
    "record, field, reason",
    [
        (product("A", name=""), "name", "Must not be empty."),
        (product("A", name="x" * 201), "name", "Must be at most 200 characters long."),
        (product("A", name=5), "name", "Must be text, not a whole number."),
        (product("A", price=True), "price", "Must be a decimal number, not true or false."),
        (product("A", price="abc"), "price", "Must be a decimal number."),
        (product("A", quantity="3"), "quantity", "Must be a number, not text."),
        (product("A", active="yes"), "active", "Must be true or false, not text."),
        (product("A", attributes=[1]), "attributes", "Must be an object, not a list."),
    ],
)
def test_catalog_reasons(record, field, reason):
    fields = reasons(get_target("catalog.product"), record)
    assert fields[field] == [reason]
    assert "`" not in json.dumps(fields)  # no msgspec type names left


def test_crm_reasons():
    contact = {"external_id": 1, "email": "not an e-mail", "signed_up_at": "2024-01-01T00:00:00"}
    fields = reasons(get_target("crm.contact"), contact)
    assert fields == {
        "email": ["Must be an e-mail address."],
        "signed_up_at": ["Must include a time zone (Z or +01:00)."],
    }


def test_a_target_gives_its_own_sentence():
    class Rec(msgspec.Struct, forbid_unknown_fields=True):
        sku: str
        code: Annotated[str, Meta(pattern=r"^[A-Z]{2}-\d+$")]

    class Own(Target):
        name, model, key_field, schema = "tests.own", Product, "sku", Rec
        messages = {"code": "Must look like AB-123."}

    class Generic(Own):
        messages = {}

    assert reasons(Own(), {"sku": "A", "code": "x"}) == {"code": ["Must look like AB-123."]}
    assert reasons(Generic(), {"sku": "A", "code": "x"}) == {"code": ["Must match the pattern ^[A-Z]{2}-\\d+$."]}


@pytest.mark.parametrize(
    "raw, sentence",
    [
        ("Expected `str` matching regex '^[A-Z]{3}$' - at `$`", "Must be 3 upper-case letters."),
        ("Expected `int` >= 0", "Must be at least 0."),
        ("Expected `int` < 10", "Must be less than 10."),
        ("Expected `str` of length >= 3", "Must be at least 3 characters long."),
        ("Expected `array` of length <= 2", "Must have at most 2 items."),
        ("Expected `int | null`, got `str`", "Must be a whole number or null, not text."),
        ("Expected `int`, got `float`", "Must be a whole number, not a number with a fraction."),
        ("Expected `int`, got `str` - at `$.size[0]`", "Must be a whole number, not text (at size[0])."),
        ("Invalid RFC3339 encoded date", "Must be a date like 2024-01-31."),
        ("Invalid UUID", "Must be a UUID."),
        ("something else entirely", "Something else entirely."),
    ],
)
def test_readable_message(raw, sentence):
    assert readable_message(raw) == sentence
