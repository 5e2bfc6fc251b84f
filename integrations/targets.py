"""Targets: host models registered as sync destinations (SPEC section 2).

A host app declares its targets in `sync_targets.py` (found by autodiscovery, like admin.py):

    @register
    class ProductTarget(Target):
        name = "catalog.product"
        model = Product
        owner_field = "customer"
        key_field = "sku"
        schema = ProductRecord          # a msgspec.Struct, compiled once, checked in C
        checks = {"price": check_price} # the per-field checks the schema's __post_init__ runs

The engine reads nothing else of the host app: it never imports it.
"""

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
from django.db import models

_registry: dict[str, "Target"] = {}


class Target:
    """A sync destination. Subclasses set the class attributes; the hooks are no-ops."""

    name: ClassVar[str]
    model: ClassVar[type[models.Model]]
    owner_field: ClassVar[str] = "customer"
    key_field: ClassVar[str]
    schema: ClassVar[type[msgspec.Struct]]
    # field name -> function(value) returning the clean value or raising ValueError(message)
    checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    # a column set to now() whenever the engine writes a row (None: no such column)
    touch_field: ClassVar[str | None] = None

    def __init__(self):
        for attr in ("name", "model", "key_field", "schema"):
            if not hasattr(self, attr):
                raise NotImplementedError(f"{type(self).__name__} must define `{attr}`")
        self.struct_fields = {f.name: f for f in msgspec.structs.fields(self.schema)}
        if self.key_field not in self.struct_fields:
            raise NotImplementedError(f"{self.name}: the schema must contain the key field {self.key_field!r}")
        # fields written to the model besides owner and key, in schema order
        self.fields: tuple[str, ...] = tuple(n for n in self.struct_fields if n != self.key_field)
        self.required = {f.name for f in self.struct_fields.values() if f.required}
        self.json_fields = {
            f.name for f in self.struct_fields.values() if _is_container(f.type)
        }
        self.bool_fields = {f.name for f in self.struct_fields.values() if f.type is bool}
        self.batch_type = list[self.schema]

    def __repr__(self):
        return f"<Target {self.name}>"

    # --- model access -------------------------------------------------------------------------
    def owner_rows(self, owner_id):
        return self.model._default_manager.filter(**{f"{self.owner_field}_id": owner_id})

    @property
    def owner_column(self) -> str:
        return self.model._meta.get_field(self.owner_field).column

    @property
    def key_column(self) -> str:
        return self.model._meta.get_field(self.key_field).column

    def column(self, field: str) -> str:
        return self.model._meta.get_field(field).column

    # --- hooks --------------------------------------------------------------------------------
    def to_data(self, record: msgspec.Struct) -> dict:
        """The clean record as JSON-ready builtins (Decimal as string), as stored for apply."""
        return msgspec.to_builtins(record)


def _is_container(tp) -> bool:
    origin = getattr(tp, "__origin__", tp)
    return origin in (dict, list)


def register(cls: type[Target]) -> type[Target]:
    target = cls()
    if target.name in _registry and type(_registry[target.name]) is not cls:
        raise ValueError(f"target {target.name!r} is registered twice")
    _registry[target.name] = target
    return cls


def get_target(name: str) -> Target:
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"unknown target {name!r}; registered: {', '.join(sorted(_registry)) or 'none'}") from None


def target_names() -> list[str]:
    return sorted(_registry)


# --- adapters: customer-specific logic applied to each raw record before validation -------------
_adapters: dict[str, Callable[[dict], dict]] = {}


def register_adapter(name: str):
    """Register `func(record: dict) -> dict`. It runs after the field map, before validation;
    raising ValueError turns the record into an `invalid` error with that message."""

    def decorator(func):
        _adapters[name] = func
        return func

    return decorator


def get_adapter(name: str) -> Callable[[dict], dict]:
    try:
        return _adapters[name]
    except KeyError:
        raise LookupError(f"unknown adapter {name!r}; registered: {', '.join(sorted(_adapters)) or 'none'}") from None


def adapter_names() -> list[str]:
    return sorted(_adapters)
