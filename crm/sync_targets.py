"""The crm demo targets (SPEC section 12): a string key, an integer key with a reference, a
composite key, a UUID key."""

import datetime
import decimal
import uuid
from typing import Annotated

import msgspec
from msgspec import Meta

from integrations.targets import Target, register

from .models import Category, Contact, Device, OrderLine

MAX_INT = 2_147_483_647


def decimal_check(max_digits: int, places: int):
    """A check for a DecimalField(max_digits, places): finite, in range, at most `places` places."""
    limit = decimal.Decimal(10) ** (max_digits - places)
    step = decimal.Decimal(1).scaleb(-places)

    def check(value: decimal.Decimal | None) -> decimal.Decimal | None:
        if value is None:
            return None
        if not value.is_finite():
            raise ValueError("Must be a finite number.")
        if abs(value) >= limit:
            raise ValueError(f"Must be less than {limit:,} in absolute value.")
        if value != value.quantize(step):
            raise ValueError(f"At most {places} decimal places.")
        return value

    return check


check_score = decimal_check(6, 2)
check_unit_price = decimal_check(12, 2)


class CategoryRecord(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=32)]
    name: Annotated[str, Meta(min_length=1, max_length=100)]


@register
class CategoryTarget(Target):
    name = "crm.category"
    model = Category
    key_field = "code"
    schema = CategoryRecord


class ContactRecord(msgspec.Struct, forbid_unknown_fields=True):
    external_id: int
    email: Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    signed_up_at: Annotated[datetime.datetime, Meta(tz=True)]
    birth_date: datetime.date | None = None
    score: decimal.Decimal | None = None
    category: str | None = None  # the code of one of the customer's categories


@register
class ContactTarget(Target):
    name = "crm.contact"
    model = Contact
    key_field = "external_id"
    schema = ContactRecord
    checks = {"score": check_score}
    references = {"category": "crm.category"}


class OrderLineRecord(msgspec.Struct, forbid_unknown_fields=True):
    order_no: Annotated[str, Meta(min_length=1, max_length=32)]
    line: int
    sku: Annotated[str, Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, Meta(ge=-MAX_INT, le=MAX_INT)]
    unit_price: decimal.Decimal


@register
class OrderLineTarget(Target):
    name = "crm.order_line"
    model = OrderLine
    key_fields = ("order_no", "line")
    schema = OrderLineRecord
    checks = {"unit_price": check_unit_price}


class DeviceRecord(msgspec.Struct, forbid_unknown_fields=True):
    device_id: uuid.UUID
    label: Annotated[str, Meta(min_length=1, max_length=100)]


@register
class DeviceTarget(Target):
    name = "crm.device"
    model = Device
    key_field = "device_id"
    schema = DeviceRecord
