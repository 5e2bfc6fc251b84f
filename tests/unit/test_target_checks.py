"""Registration checks (SPEC 2): a target that does not fit its model is a system check error at
startup naming the target and the fix, never a crash in a worker."""

import msgspec
import pytest
from django.core import checks

from crm.models import Category, Contact, OrderLine
from integrations.targets import Target, check_targets, target_problems


class CodeName(msgspec.Struct):
    code: str
    name: str


def make(model, **attrs):
    attrs.setdefault("name", "test.bad")
    attrs.setdefault("model", model)
    attrs.setdefault("schema", CodeName)
    if "key_fields" not in attrs:
        attrs.setdefault("key_field", "code")
    return type("BadTarget", (Target,), attrs)()


def test_the_registered_targets_pass():
    assert check_targets() == []
    assert not [e for e in checks.run_checks() if e.id == "integrations.E101"]


class Unknown(msgspec.Struct):
    code: str
    name: str
    colour: str


class EmailKeyed(msgspec.Struct):
    email: str
    signed_up_at: str
    external_id: int


class WithCategory(msgspec.Struct):
    external_id: int
    email: str
    signed_up_at: str
    category: str | None = None


class LineKey(msgspec.Struct):
    order_no: str
    line: int
    sku: str
    quantity: int
    unit_price: str


@pytest.mark.parametrize(
    "target, words",
    [
        (lambda: make(Category, schema=Unknown), ["'colour' is not a field of crm.Category", "fix"]),
        (
            lambda: make(Contact, schema=EmailKeyed, key_field="email"),
            ["not unique per owner", "UniqueConstraint(fields=['customer', 'email']"],
        ),
        (
            lambda: make(Category, owner_field="name"),
            ["owner_field 'name' must be a ForeignKey", "integrations.Customer"],
        ),
        (
            lambda: make(Contact, schema=WithCategory, key_field="external_id", references={"category": "crm.nope"}),
            ["unknown target 'crm.nope'", "register it"],
        ),
        (
            lambda: make(Contact, schema=WithCategory, key_field="external_id"),
            ["'category' is a foreign key", "references"],
        ),
        (
            lambda: make(Contact, schema=WithCategory, key_field="external_id", references={"category": "crm.contact"}),
            ["points to crm.Category, but crm.contact syncs crm.Contact"],
        ),
        (
            lambda: make(OrderLine, schema=LineKey, key_fields=("order_no", "sku")),
            ["order_no/sku is not unique per owner"],
        ),
    ],
)
def test_each_problem_is_named_with_its_fix(target, words):
    problems = " | ".join(target_problems(target()))
    for word in words:
        assert word in problems, problems


def test_a_required_column_outside_the_schema_is_named():
    problems = target_problems(
        make(Contact, schema=WithCategory, key_field="external_id", references={"category": "crm.category"})
    )
    assert problems == []

    class NoDate(msgspec.Struct):
        external_id: int
        email: str

    problems = target_problems(make(Contact, schema=NoDate, key_field="external_id"))
    assert any("'signed_up_at'" in p and "no default" in p for p in problems), problems


def test_a_key_of_another_type_stops_registration():
    class FloatKey(msgspec.Struct):
        code: float
        name: str

    with pytest.raises(NotImplementedError, match="str, int or uuid.UUID"):
        make(Category, schema=FloatKey)
