"""The demo target `catalog.product` (SPEC section 5) and a customer-specific adapter."""

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from integrations.targets import Target, register, register_adapter

from .models import Product

PRICE_LIMIT = Decimal(10_000_000_000)
CENT = Decimal("0.01")
MAX_QUANTITY = 2_147_483_647


def check_price(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("Must be a finite number.")
    if value < 0:
        raise ValueError("Must be at least 0.")
    if value >= PRICE_LIMIT:
        raise ValueError("Must be less than 10,000,000,000.")
    if value != value.quantize(CENT):  # in range, so quantize cannot overflow
        raise ValueError("At most 2 decimal places.")
    return value


def check_quantity(value: int | float) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Must be a whole number.")
        value = int(value)
    if not 0 <= value <= MAX_QUANTITY:
        raise ValueError(f"Must be between 0 and {MAX_QUANTITY}.")
    return value


class ProductRecord(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=64)]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    price: Decimal
    currency: Annotated[str, Meta(pattern="^[A-Z]{3}$")]
    quantity: int | float = 0
    active: bool = True
    attributes: dict[str, Any] = {}


@register
class ProductTarget(Target):
    name = "catalog.product"
    model = Product
    owner_field = "customer"
    key_field = "sku"
    schema = ProductRecord
    checks = {"price": check_price, "quantity": check_quantity}
    touch_field = "updated_at"


@register_adapter("cents-and-flags")
def cents_and_flags(record: dict) -> dict:
    """For a customer whose ERP sends prices in cents (`price_cents`) and "Y"/"N" flags."""
    record = dict(record)
    if "price_cents" in record:
        cents = record.pop("price_cents")
        try:
            record["price"] = (Decimal(str(cents)) / 100).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            raise ValueError(f"price_cents {cents!r} is not a number") from None
    if "active" in record and isinstance(record["active"], str):
        flag = record["active"].strip().upper()
        if flag not in {"Y", "N"}:
            raise ValueError(f"active flag {record['active']!r} is neither Y nor N")
        record["active"] = flag == "Y"
    return record
