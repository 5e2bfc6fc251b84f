"""Targets: host models registered as sync destinations (SPEC section 2).

A host app declares its targets in `sync_targets.py` (found by autodiscovery, like admin.py):

    @register
    class ProductTarget(Target):
        name = "catalog.product"
        model = Product
        owner_field = "customer"
        key_field = "sku"
        schema = ProductRecord          # a msgspec.Struct, compiled once, checked in C
        checks = {"price": check_price} # per-field checks: run after each decode, and to explain a failure

The key is one field typed str, int or uuid.UUID by the schema (`key_field`), or several
(`key_fields = ("order_no", "line")`); the model must have a unique constraint on exactly the
owner and key fields. `references = {"category": "crm.category"}` makes a foreign key of the
model carry the referenced target's key in the record. Model columns outside the schema take the
model's default on insert and keep their value on update. Registration checks (system check
integrations.E101) say at startup what does not fit the model.

The engine reads nothing else of the host app: it never imports it.
"""

import datetime
import decimal
import inspect
import keyword
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

import msgspec
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.fields import NOT_PROVIDED

from .ingest.files import IGNORED_COLUMN_PREFIX

_registry: dict[str, "Target"] = {}


class Target:
    """A sync destination. Subclasses set the class attributes; the hooks are no-ops."""

    name: ClassVar[str]
    model: ClassVar[type[models.Model]]
    owner_field: ClassVar[str] = "customer"
    # the key: one field (`key_field`, typed str, int or UUID by the schema) or several (`key_fields`)
    key_field: ClassVar[str | None] = None
    key_fields: ClassVar[tuple[str, ...] | None] = None
    # the record (an instance's `schema` is a subclass of it that also runs `checks`: see _checking)
    schema: ClassVar[type[msgspec.Struct]]
    # field name -> function(value) returning the clean value or raising ValueError(message): the one
    # declaration of the checks the schema's types cannot say; every decode runs them (the schema's
    # __post_init__ is made of them) and a failing record is explained with them field by field
    checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    # field name -> the reason given when the value fails the schema's own constraints (instead of the
    # generic sentence made of msgspec's message, e.g. "Must match the pattern ^[^@\s]+@[^@\s]+$.")
    messages: ClassVar[dict[str, str]] = {}
    # a column set to now() whenever the engine writes a row (None: no such column)
    touch_field: ClassVar[str | None] = None
    # foreign key field -> the target it references: the record carries the referenced row's key
    references: ClassVar[dict[str, str]] = {}

    def __init__(self):
        for attr in ("name", "model", "schema"):
            if not hasattr(self, attr):
                raise NotImplementedError(f"{type(self).__name__} must define `{attr}`")
        if bool(self.key_field) == bool(self.key_fields):
            raise NotImplementedError(f"{type(self).__name__} must define either `key_field` or `key_fields`")
        self.struct_fields = {f.name: f for f in msgspec.structs.fields(self.schema)}
        unknown = sorted(set(self.checks) - self.struct_fields.keys())
        if unknown:
            raise NotImplementedError(f"{self.name}: checks name field(s) not in the schema: {', '.join(unknown)}")
        self.schema = _checking(type(self).schema, self.checks)
        # the key's fields, one or several; a key value is the field's value, or a tuple of them
        self.keys: tuple[str, ...] = tuple(self.key_fields) if self.key_fields else (self.key_field,)
        self.composite = len(self.keys) > 1
        for name in self.keys:
            if name not in self.struct_fields:
                raise NotImplementedError(f"{self.name}: the schema must contain the key field {name!r}")
        self.key_kinds: tuple[str, ...] = tuple(_key_kind(self.name, n, self.struct_fields[n].type) for n in self.keys)
        # an integer key part must fit its column: a key beyond it is not a key of this target
        self.key_ranges = tuple(
            _int_range(self.model, n) if k == "int" else None for n, k in zip(self.keys, self.key_kinds)
        )
        # fields written to the model besides owner and key, in schema order
        self.fields: tuple[str, ...] = tuple(n for n in self.struct_fields if n not in self.keys)
        self.staged_defaults = _callable_defaults(self.model, {self.owner_field, *self.keys, *self.fields})
        # the fields a record must name (no default in the schema)
        self.required = {f.name for f in self.struct_fields.values() if f.required}
        self.json_fields = {f.name for f in self.struct_fields.values() if _is_container(f.type)}

    def referenced(self, field: str) -> "Target":
        """The target a reference field points to (looked up when used: registration order is free)."""
        return get_target(self.references[field])

    def __repr__(self):
        return f"<Target {self.name}>"

    # --- model access -------------------------------------------------------------------------
    def owner_rows(self, owner_id):
        return self.model._default_manager.filter(**{f"{self.owner_field}_id": owner_id})

    @property
    def owner_column(self) -> str:
        return self.model._meta.get_field(self.owner_field).column

    @property
    def key_columns(self) -> list[str]:
        return [self.model._meta.get_field(name).column for name in self.keys]

    def column(self, field: str) -> str:
        return self.model._meta.get_field(field).column

    # --- keys (SPEC 2): a value, a tuple of values inside; in JSON a value or an object ----------
    def key_of(self, record: msgspec.Struct):
        """The key of a validated record."""
        if self.composite:
            return tuple(getattr(record, name) for name in self.keys)
        return getattr(record, self.keys[0])

    def keys_of(self, records: list) -> list:
        """The keys of validated records, in their order: key_of a column at a time."""
        if not self.composite:
            return list(map(attrgetter(self.keys[0]), records))
        return list(zip(*(map(attrgetter(name), records) for name in self.keys)))

    def read_key(self, record: dict, *, lax: bool = False):
        """(key, None) when `record` holds a usable key, else (None, why it does not)."""
        values = []
        for name, kind, bounds in zip(self.keys, self.key_kinds, self.key_ranges):
            value, why = _key_part(kind, record.get(name), lax, bounds)
            if why:
                return None, f"key field {name!r} {why}"
            values.append(value)
        return (tuple(values) if self.composite else values[0]), None

    def keys_usable(self, parts) -> bool:
        """Whether every key of a batch the schema has typed is usable, as read_key decides one by one
        (_key_part), for a whole batch at once: the schema checked each part's type, not what makes
        a key of that type unusable (blank text, an integer beyond its column). `parts`: for each
        key field in key order, a list of its values across the batch. The typed fast paths must ask
        this: a record with such a key goes to the careful path, or its fate would depend on its
        batch's other records."""
        for values, kind, bounds in zip(parts, self.key_kinds, self.key_ranges):
            if kind == "str" and not all(map(str.strip, values)):
                return False
            if kind == "int" and values and not (bounds[0] <= min(values) and max(values) <= bounds[1]):
                return False
        return True

    def parse_key(self, value):
        """A key as listed in `deletes` (JSON form), or None when it is not one of this target's keys."""
        if self.composite:
            if not isinstance(value, dict) or set(value) != set(self.keys):
                return None
            key, why = self.read_key(value)
        else:
            key, why = self.read_key({self.keys[0]: value})
        return None if why or not self.key_fits(key) else key

    def is_key(self) -> Callable[[Any], bool]:
        """A fast test of one value being a key of this single-key target, as parse_key decides:
        for references, checked on every record of a batch."""
        kind, name = self.key_kinds[0], self.keys[0]
        if self.composite or kind == "uuid":
            return lambda value: self.parse_key(value) is not None
        if kind == "int":
            low, high = self.key_ranges[0]
            return lambda value: type(value) is int and low <= value <= high
        limit = getattr(self.model._meta.get_field(name), "max_length", None) or float("inf")
        return lambda value: (
            type(value) is str and 0 < len(value) <= limit and not value.isspace() and "\x00" not in value
        )

    def key_fits(self, key) -> bool:
        """Whether the key can be stored in the model's key columns (a string within max_length,
        an integer within the column's range): a key that cannot cannot match any row either."""
        meta = self.model._meta
        for name, kind, value in zip(self.keys, self.key_kinds, key if self.composite else (key,)):
            if kind == "str" and "\x00" in value:
                return False
            limit = getattr(meta.get_field(name), "max_length", None)
            if kind == "str" and limit and len(value) > limit:
                return False
        return True

    def key_json(self, key):
        """The key as the API shows it: a string, an integer, or an object of the key's fields."""
        if key is None:
            return None
        if self.composite:
            return {name: _json_part(v) for name, v in zip(self.keys, key)}
        return _json_part(key)

    def key_span(self, keys: list) -> list | None:
        """The lowest and the highest of these keys, as JSON ([low, high], a composite key as a list
        of its parts), or None when they do not say which keys the database would call equal: no
        keys, or a key column with a collation of its own (a case-insensitive one makes "a" and "A"
        one key). Batches whose spans do not overlap share no key (apply.mark_cross_batch_duplicates).
        A uuid part is compared as its text, whose order is the uuid's."""
        if not keys or not self._keys_compare_exactly:
            return None
        if "uuid" in self.key_kinds:
            keys = [tuple(map(_json_part, k)) if self.composite else _json_part(k) for k in keys]
        try:
            low, high = min(keys), max(keys)
        except TypeError:  # parts of different types: no order
            return None
        return [list(low), list(high)] if self.composite else [low, high]

    @property
    def _keys_compare_exactly(self) -> bool:
        from django.db import connection

        fields = [self.model._meta.get_field(name) for name in self.keys]
        return not any(
            getattr(f, "db_collation", None) or "citext" in (f.db_type(connection) or "").lower() for f in fields
        )

    def key_display(self, key) -> str:
        if self.composite:
            return ", ".join(f"{name}={v}" for name, v in zip(self.keys, key))
        return str(key)

    # --- hooks --------------------------------------------------------------------------------
    def to_data(self, record: msgspec.Struct) -> dict:
        """The clean record as JSON-ready builtins (Decimal as string), as stored for apply."""
        return msgspec.to_builtins(record)


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # a BigIntegerField's range on every database
_KINDS = {str: "str", int: "int", uuid.UUID: "uuid"}


def _key_kind(target: str, name: str, tp) -> str:
    base = tp
    while typing.get_origin(base) is typing.Annotated:
        base = typing.get_args(base)[0]
    if base not in _KINDS:
        raise NotImplementedError(f"{target}: key field {name!r} must be typed str, int or uuid.UUID in the schema")
    return _KINDS[base]


def _checking(schema: type[msgspec.Struct], checks: dict) -> type[msgspec.Struct]:
    """The schema running `checks` whenever a record is made (msgspec calls a struct's __post_init__
    after each decode or construction, and a ValueError there becomes the decode's ValidationError):
    the typed fast path decodes with it, the careful path converts into it. The schema's own
    __post_init__, if any, runs first. Written out as plain assignments (as dataclasses write their
    __init__): a loop of getattr/setattr costs a fifth more of a 50,000-record decode."""
    if not checks:
        return schema
    own = getattr(schema, "__post_init__", None)
    names = list(checks)
    namespace = {
        "own": own,
        **{f"check_{i}": checks[name] for i, name in enumerate(names)},
        **{f"name_{i}": name for i, name in enumerate(names)},
    }
    lines = ["def __post_init__(self):", *(["    own(self)"] if own else [])]
    for i, name in enumerate(names):
        if name.isidentifier() and not keyword.iskeyword(name):
            lines.append(f"    self.{name} = check_{i}(self.{name})")
        else:  # a field name no attribute syntax can spell
            lines.append(f"    setattr(self, name_{i}, check_{i}(getattr(self, name_{i})))")
    exec("\n".join(lines), namespace)
    return msgspec.defstruct(
        schema.__name__,
        [],
        bases=(schema,),
        module=schema.__module__,
        namespace={"__post_init__": namespace["__post_init__"]},
    )


def _callable_defaults(model, synced: set) -> tuple[str, ...]:
    """The model's columns outside the schema whose `default` is a callable (uuid4, now, dict...):
    the engine stages a value per record for them, used when the row is inserted."""
    return tuple(
        f.name
        for f in model._meta.concrete_fields
        if f.name not in synced
        and not f.primary_key
        and not f.generated
        and f.has_default()
        and callable(f.default)
        and getattr(f, "db_default", NOT_PROVIDED) is NOT_PROVIDED
        and not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
    )


def _int_range(model, name: str) -> tuple[int, int]:
    try:
        internal = model._meta.get_field(name).get_internal_type()
    except FieldDoesNotExist:  # the registration checks say so
        internal = "BigIntegerField"
    low, high = BaseDatabaseOperations.integer_field_ranges.get(internal, (_INT_MIN, _INT_MAX))
    return low, high


def _key_part(kind: str, value, lax: bool, bounds=None):
    """(value, None) for a usable key part of this kind, else (None, why not). Target.keys_usable is
    the same rule for a whole batch of typed keys: change them together."""
    if value is None:
        return None, "is missing"
    if kind == "str":
        if not isinstance(value, str):
            return None, f"is {_kind(value)}, not a string"
        return (value, None) if value.strip() else (None, "is empty")
    if isinstance(value, str) and not value.strip():
        return None, "is empty"
    if kind == "int":
        if lax and isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
            value = int(value)  # a CSV cell, as msgspec's lax mode reads it
        if type(value) is not int:
            return None, f"is {_kind(value)}, not an integer"
        low, high = bounds or (_INT_MIN, _INT_MAX)
        if not low <= value <= high:
            return None, f"is out of the key's range ({low} to {high})"
        return value, None
    if isinstance(value, uuid.UUID):
        return value, None
    if not isinstance(value, str):
        return None, f"is {_kind(value)}, not a UUID"
    try:
        return uuid.UUID(value), None
    except ValueError:
        return None, "is not a UUID"


def _json_part(value):
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (decimal.Decimal, datetime.date)):
        return str(value)
    return value


def _kind(value) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


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


# --- adapters: customer-specific logic applied to the raw records before validation ---------------


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter may need to know: whose records these are, and which run brings them."""

    customer: Any
    integration: Any
    run: Any


class Adapter:
    """A registered adapter, called the same way whatever its signature: `func(record)`,
    `func(record, context)`, or for a whole batch `func(records, context)` / `func(records)`."""

    def __init__(self, name: str, func: Callable, *, batch: bool):
        self.name, self.func, self.batch = name, func, batch
        self.wants_context = _positional_arity(func) >= 2

    def __call__(self, value, context: AdapterContext | None = None):
        return self.func(value, context) if self.wants_context else self.func(value)


def _positional_arity(func: Callable) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: one argument
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


_adapters: dict[str, Adapter] = {}


def register_adapter(name: str, *, batch: bool = False):
    """Register an adapter. It runs after the field map, before validation, and may take the
    context (customer, integration, run) as its second argument.

    Per record (default): `func(record: dict[, context]) -> dict`; raising ValueError turns the
    record into an `invalid` error with that message.
    For a whole batch (`batch=True`, so lookups are one query per batch, not per record):
    `func(records: list[dict][, context]) -> list`, the same length and order; an item that is
    an exception (e.g. ValueError("unknown branch")) rejects that record; raising ValueError
    rejects every record of the batch."""

    def decorator(func):
        _adapters[name] = Adapter(name, func, batch=batch)
        return func

    return decorator


def get_adapter(name: str) -> Adapter:
    try:
        return _adapters[name]
    except KeyError:
        raise LookupError(f"unknown adapter {name!r}; registered: {', '.join(sorted(_adapters)) or 'none'}") from None


def adapter_names() -> list[str]:
    return sorted(_adapters)


# --- registration checks (SPEC 2): a target that does not fit its model stops startup -------------


def target_problems(target: Target) -> list[str]:
    """What is wrong between a target and its model, each with its fix ([] when nothing)."""
    from .models import Customer

    meta = target.model._meta
    label = meta.label
    problems = []

    def field(name):
        try:
            return meta.get_field(name)
        except FieldDoesNotExist:
            return None

    owner = field(target.owner_field)
    if owner is None or not owner.many_to_one or owner.related_model is not Customer:
        problems.append(
            f"owner_field {target.owner_field!r} must be a ForeignKey of {label} to integrations.Customer "
            "(every sync is scoped to one customer's rows); fix: add that foreign key or name it in owner_field"
        )
    for name in target.struct_fields:
        f = field(name)
        if name.startswith(IGNORED_COLUMN_PREFIX):
            problems.append(
                f"schema field {name!r}: names starting with error_ are the errors CSV's own columns, "
                "which every upload ignores; fix: rename it"
            )
        if f is None or not f.concrete:
            problems.append(
                f"schema field {name!r} is not a field of {label}; fix: rename it to a model field "
                "(customers' own names belong in an integration's field map)"
            )
        elif f.is_relation and name not in target.references:
            problems.append(
                f"schema field {name!r} is a foreign key of {label}; fix: declare it in "
                f"references = {{{name!r}: '<the target of {f.related_model._meta.label}>'}}"
            )
    if owner is not None and not _unique_per_owner(target.model, {target.owner_field, *target.keys}):
        fields = [target.owner_field, *target.keys]
        problems.append(
            f"the key {'/'.join(target.keys)} is not unique per owner in {label}; fix: add "
            f"models.UniqueConstraint(fields={fields!r}, name=...) to its Meta.constraints"
        )
    for name, target_name in target.references.items():
        if target_name not in _registry:
            problems.append(
                f"reference {name!r} names the unknown target {target_name!r}; fix: register it "
                f"(registered: {', '.join(sorted(_registry))})"
            )
            continue
        ref, f = _registry[target_name], field(name)
        if name not in target.struct_fields:
            problems.append(f"reference {name!r} is not a field of the schema; fix: add `{name}: <key type> | None`")
        if f is None or not f.many_to_one:
            problems.append(
                f"reference {name!r} must be a ForeignKey of {label}; fix: make it one, to {ref.model._meta.label}"
            )
        elif f.related_model is not ref.model:
            problems.append(
                f"reference {name!r} points to {f.related_model._meta.label}, but {target_name} syncs "
                f"{ref.model._meta.label}; fix: reference the target of {f.related_model._meta.label}"
            )
        if ref.composite:
            problems.append(
                f"reference {name!r}: {target_name} has a composite key; only single-key targets can be referenced"
            )
    if target.touch_field and field(target.touch_field) is None:
        problems.append(f"touch_field {target.touch_field!r} is not a field of {label}")
    synced = {target.owner_field, *target.keys, *target.fields, target.touch_field}
    for f in meta.concrete_fields:
        if (
            f.name not in synced
            and not f.primary_key
            and not f.null
            and not f.has_default()
            and not f.generated
            and getattr(f, "db_default", NOT_PROVIDED) is NOT_PROVIDED
            and not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
        ):
            problems.append(
                f"column {f.name!r} of {label} is not in the schema, not nullable and has no default, "
                "so no row could be inserted; fix: add it to the schema, or give it a default or db_default"
            )
    return problems


def _unique_per_owner(model, fields: set) -> bool:
    meta = model._meta
    for constraint in meta.total_unique_constraints:  # UniqueConstraints without a condition
        if set(constraint.fields) == fields:
            return True
    # exactly these fields: PostgreSQL's ON CONFLICT needs a unique index on them
    return any(set(together) == fields for together in meta.unique_together)


@checks.register()
def check_targets(app_configs=None, **kwargs):
    """Every registered target against its model: an error at startup, never in a worker."""
    return [
        checks.Error(f"sync target {target.name}: {problem}", obj=type(target), id="integrations.E101")
        for target in _registry.values()
        for problem in target_problems(target)
    ]
