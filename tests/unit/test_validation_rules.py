"""Issue 11 point 4: each validation rule written once. A target's `checks` are declared once and
both the decode (fast path) and the field-by-field explanation run them; the usable-key rule of the
fast paths is the one the careful path reads keys by; a record's check depends only on its
arguments, never on state left by the previous batch."""

import json

import msgspec
import pytest

from crm.models import Category
from integrations.ingest.decode import decode_batch
from integrations.ingest.validate import Validator
from integrations.targets import Target, get_target
from tests.support import product


def body(records) -> bytes:
    return json.dumps({"records": records}).encode()


def check_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("No spaces around the name.")
    return value.upper()


class CodeName(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name: str


class CodeNameTarget(Target):
    name = "test.code_name"
    model = Category
    key_field = "code"
    schema = CodeName
    checks = {"name": check_name}


def test_the_checks_are_declared_once_and_every_decode_runs_them():
    target = CodeNameTarget()
    assert issubclass(target.schema, CodeName) and target.schema.__name__ == "CodeName"
    assert msgspec.json.decode(b'{"code": "a", "name": "x"}', type=target.schema).name == "X"
    with pytest.raises(msgspec.ValidationError, match="No spaces around the name"):
        msgspec.json.decode(b'{"code": "a", "name": " x"}', type=target.schema)
    # the fast path (all valid) and the careful path (one invalid) give the same clean records
    validator = Validator(target)
    fast = validator.validate(decode_batch(body([{"code": "a", "name": "x"}]), "application/json"))
    careful = validator.validate(
        decode_batch(body([{"code": "a", "name": "x"}, {"code": "b", "name": " y"}]), "application/json")
    )
    assert [r.name for _, _, r in fast.valid] == [r.name for _, _, r in careful.valid] == ["X"]
    [problem] = careful.problems
    assert (problem.code, problem.fields) == ("invalid", {"name": ["No spaces around the name."]})


def test_a_schemas_own_post_init_runs_first():
    class Normalised(msgspec.Struct):
        code: str
        name: str

        def __post_init__(self):
            self.name = self.name.strip()

    target = type("T", (CodeNameTarget,), {"schema": Normalised})()
    assert msgspec.convert({"code": "a", "name": " x "}, target.schema).name == "X"


def test_checks_of_fields_outside_the_schema_stop_registration():
    with pytest.raises(NotImplementedError, match="colour"):
        type("T", (CodeNameTarget,), {"checks": {"colour": check_name}})()


def test_the_demo_targets_declare_their_checks_on_the_target_only():
    for name in ("catalog.product", "crm.contact", "crm.order_line"):
        target = get_target(name)
        assert target.checks and "__post_init__" not in type(target).schema.__dict__


@pytest.mark.parametrize(
    "name, values",
    [
        ("catalog.product", ["A", " A ", "", "   ", "\t", "x" * 64]),
        ("crm.contact", [0, 1, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64]),
    ],
)
def test_the_fast_paths_key_rule_is_the_careful_paths(name, values):
    target = get_target(name)
    field = target.keys[0]
    for value in values:
        usable = target.read_key({field: value})[1] is None
        assert target.keys_usable([[value]]) is usable, value
    assert target.keys_usable([values]) is all(target.read_key({field: v})[1] is None for v in values)


def test_a_record_is_checked_by_its_arguments_alone():
    validator = Validator(get_target("catalog.product"))
    nul = product("A", name="a\x00b")
    assert not hasattr(validator, "nul_possible") and not hasattr(validator, "numbers_possible")
    assert validator.check(0, nul).code == "invalid"  # by default everything is looked at
    assert validator.check(0, nul, nul_possible=False)[1] == "A"  # the batch said: no NUL anywhere
    # a batch that had NULs leaves nothing behind for the next one
    validator.validate(decode_batch(body([nul, product("B")]), "application/json"))
    later = validator.validate(decode_batch(body([nul, product("C", price="-1")]), "application/json"))
    assert [p.code for p in later.problems] == ["invalid", "invalid"]
