"""Validation of one batch: map -> adapter -> validate, every failure collected as data.

The whole batch is first decoded and checked by the target's compiled msgspec schema (about a
million records a second); only when that fails are records checked one by one, and only the
failing ones by the detailed checker that lists every bad field (PERFORMANCE.md lesson 5).
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from itertools import repeat
from operator import attrgetter
from typing import Any

import msgspec

from ..models import RecordError
from ..targets import Adapter, Target
from .decode import DecodedBatch
from .records import ExactNumbers, Unparseable, count_keys, distinct_keys, keys_differ, no_gc

Code = RecordError.Code  # the error codes (SPEC section 3), one vocabulary with the stored errors
MAX_KEY_LENGTH = 255  # the staging and error columns; longer keys are not "readable"
ADAPTER_ERRORS = (ValueError, TypeError, KeyError, ArithmeticError)  # a record an adapter cannot use
_NOT_ADAPTED = object()


@dataclass
class Problem:
    index: int
    key: Any  # the target's key (a value, a tuple for a composite key), None when unreadable
    code: str
    message: str
    fields: dict = field(default_factory=dict)
    record: Any = None


@dataclass
class BatchResult:
    valid: list[tuple[int, Any, msgspec.Struct]] = field(default_factory=list)  # (index, key, record)
    problems: list[Problem] = field(default_factory=list)
    deletes: list = field(default_factory=list)  # the target's keys
    received: int = 0


@cache
def _typed_envelope(schema: type, complete: bool) -> type:
    # UNSET when absent: the envelope's own keys are counted exactly (see _keys_named_twice)
    return msgspec.defstruct(
        f"{schema.__name__}{'Complete' if complete else ''}Batch",
        [
            ("records", list[_complete(schema) if complete else schema]),
            ("deletes", list[Any] | msgspec.UnsetType, msgspec.UNSET),
            ("seq", int | None | msgspec.UnsetType, msgspec.UNSET),
        ],
    )


@cache
def _complete(schema: type) -> type:
    """The schema with every field required: a record it decodes names each field at least once,
    which is what lets one count over the bytes prove that no record names one twice."""
    fields = [(f.name, f.type) for f in msgspec.structs.fields(schema)]
    return msgspec.defstruct(f"{schema.__name__}Complete", fields, bases=(schema,))


class _Keys(msgspec.Struct):
    records: list[dict[str, msgspec.Raw]]


class Validator:
    """Validates batches for one integration: its target, field map and adapter."""

    def __init__(self, target: Target, field_map: dict | None = None, adapter=None, context=None):
        self.target = target
        self.field_map = field_map or {}
        self.adapter = adapter if adapter is None or isinstance(adapter, Adapter) else Adapter("", adapter, batch=False)
        self.context = context
        self.references = [
            (name, target.references[name], target.referenced(name).is_key()) for name in target.references
        ]
        self.decimal_fields = {name for name, spec in target.struct_fields.items() if _wants_decimal(spec.type)}

    # --- the batch -----------------------------------------------------------------------------
    def validate(self, batch: DecodedBatch) -> BatchResult:
        with no_gc():
            return self._validate(batch)

    def _validate(self, batch: DecodedBatch) -> BatchResult:
        fast = self._fast_path(batch)
        if fast is not None:
            records, deletes = fast
            result = BatchResult(deletes=self._usable_keys(deletes), received=len(records))
            keys = self.target.keys_of(records)
            if not self.references and len(set(keys)) == len(keys):
                # every record valid and each key once (the usual batch): no record looked at alone
                result.valid = list(zip(range(len(records)), keys, records))
            else:
                self._collect(result, zip(range(len(records)), keys, records))
            return result
        batch = batch.careful()
        lax, nul = batch.lax, batch.nul_possible
        # an adapter is customer code: whatever numbers it makes are looked at too
        numbers = batch.numbers_possible or batch.lax or self.adapter is not None
        result = BatchResult(deletes=self._usable_keys(batch.deletes), received=len(batch.records))
        check = self.check
        if self.adapter is not None and self.adapter.batch:
            adapted = self._adapt_batch(batch.records)
            checked = (
                check(i, raw, lax=lax, adapted=adapted.get(i, _NOT_ADAPTED), nul_possible=nul, numbers_possible=numbers)
                for i, raw in enumerate(batch.records)
            )
        else:
            checked = (
                check(i, raw, lax=lax, nul_possible=nul, numbers_possible=numbers)
                for i, raw in enumerate(batch.records)
            )
        self._collect(result, checked)
        return result

    def _fast_path(self, batch: DecodedBatch):
        """All records valid as sent, decoded and checked in C; None when anything needs care."""
        if batch.columns is not None and not (self.field_map or self.adapter):
            return self._columns_fast_path(batch)
        if batch.json_bytes is None or self.field_map or self.adapter or batch.lax:
            return None
        body = batch.json_bytes
        if b"\\u0000" in body:
            return None  # a NUL character somewhere: the careful path refuses it per record
        # records that name every field (what most clients send) first, then records that leave
        # some out; both decodes stop at the first record that does not fit
        for complete in (True, False):
            try:
                envelope = msgspec.json.decode(body, type=_typed_envelope(self.target.schema, complete))
                break
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
        else:
            return None
        if not self.target.keys_usable([list(map(attrgetter(name), envelope.records)) for name in self.target.keys]):
            return None  # the careful path says which keys are not usable
        if self._keys_named_twice(body, envelope, complete):
            return None  # the careful path finds the records and makes them parse_errors
        return envelope.records, (envelope.deletes or [])

    def _columns_fast_path(self, batch: DecodedBatch):
        """A columnar protobuf batch made into the schema's structs a column at a time, when nothing
        in it needs care; else None. Each column is converted to its field's type in one call
        (strict, with the field's bounds, as the careful path converts each record), then the
        structs are made from the converted columns (their __post_init__ runs as in a decode):
        measured on 50,000 products, about twice as fast as one dict a record converted whole."""
        columns = batch.columns
        if columns.absent or columns.unparseable or columns.nul_possible or columns.numbers_possible:
            return None
        names = columns.names
        fields = self.target.struct_fields
        if not set(names) <= fields.keys():
            return None  # unknown fields: the careful path names them
        position = {name: i for i, name in enumerate(names)}
        order = list(fields)
        # the fields the batch has must come first in the schema's order: the rest take defaults
        given = order[: len(names)]
        try:
            if set(given) == position.keys():
                converted = [
                    msgspec.convert(columns.values[position[name]], list[fields[name].type], strict=True)
                    for name in given
                ]
                schema = self.target.schema
                records = list(map(schema, *converted)) if names else [schema() for _ in range(columns.count)]
            else:  # an optional field left out before others: one dict a record, converted whole
                rows = list(map(dict, map(zip, repeat(names), zip(*columns.values))))
                records = msgspec.convert(rows, list[self.target.schema], strict=True)  # type: ignore[name-defined]
        except (msgspec.ValidationError, ValueError, TypeError, ArithmeticError):
            return None  # the careful path finds the records and says what is wrong with them
        # the keys checked on the columns (the records hold the same values; a key field the batch
        # leaves out has the schema's default in every record)
        if not self.target.keys_usable(
            [
                columns.values[position[name]] if name in position else list(map(attrgetter(name), records))
                for name in self.target.keys
            ]
        ):
            return None
        return records, batch.deletes

    def _keys_named_twice(self, body: bytes, envelope, complete: bool) -> bool:
        """Whether some object of a batch the typed decode accepted names a key twice (msgspec keeps
        the last one silently). Costs one count over the bytes when records name every field and
        their JSON fields hold flat objects (about 5 ms for 50,000 records); JSON fields holding
        nested objects are encoded again to count their keys, and records that leave fields out
        have their keys decoded a second time (about 25 ms either). A target whose schema nests structs,
        or lets unknown fields pass, always takes the careful path: slower, never wrong."""
        records = envelope.records
        envelope_keys = 1 + (envelope.deletes is not msgspec.UNSET) + (envelope.seq is not msgspec.UNSET)
        json_fields = list(self.target.json_fields)
        if complete:  # every record names every field at least once
            distinct = envelope_keys + len(records) * len(self.target.struct_fields)
            flat = distinct + sum(len(v) for n in json_fields for v in map(attrgetter(n), records) if type(v) is dict)
            # the colons bound the keys from above, `flat` the distinct keys from below: equal, no twice
            if body.count(b":") == flat or count_keys(body) == flat:
                return False
        else:
            # records naming only the required fields (and flat JSON fields) are proven by the count
            required = envelope_keys + len(records) * len(self.target.required)
            flat = required + sum(len(v) for n in json_fields for v in map(attrgetter(n), records) if type(v) is dict)
            if body.count(b":") == flat or count_keys(body) == flat:
                return False
            # else which fields each record names: its keys, without decoding their values
            distinct = envelope_keys + sum(map(len, msgspec.json.decode(body, type=_Keys).records))
        nested = distinct_keys([getattr(r, n) for r in records for n in json_fields])
        return keys_differ(body, None if nested is None else distinct + nested)

    def _usable_keys(self, deletes) -> list:
        """The listed deletes that are keys of the target (others cannot name a row)."""
        parse = self.target.parse_key
        return [k for k in (parse(d) for d in deletes) if k is not None]

    def _collect(self, result: BatchResult, checked) -> None:
        seen: set = set()
        for item in checked:
            if isinstance(item, Problem):
                if item.key is not None:
                    seen.add(item.key)
                result.problems.append(item)
                continue
            index, key, record = item
            if key in seen:
                result.problems.append(
                    Problem(
                        index,
                        key,
                        Code.DUPLICATE_KEY,
                        duplicate_message(self.target, key),
                        record=self.target.to_data(record),
                    )
                )
                continue
            seen.add(key)
            if self.references:
                bad = self._bad_references(record)
                if bad:
                    result.problems.append(
                        Problem(
                            index,
                            _readable_key(key),
                            Code.INVALID,
                            f"invalid field(s): {', '.join(bad)}",
                            fields=bad,
                            record=self.target.to_data(record),
                        )
                    )
                    continue
            result.valid.append((index, key, record))

    def _bad_references(self, record) -> dict:
        """Reference values that are no key of their target at all (of another type, too long):
        unknown keys, found here; whether a good key exists is decided in the apply, set-based."""
        bad = {}
        for name, target_name, is_key in self.references:
            value = getattr(record, name)
            if value is not None and not is_key(value):
                bad[name] = [unknown_reference(target_name, value)]
        return bad

    def _adapt_batch(self, records: list) -> dict:
        """A batch adapter's output for the records that are objects: {index: record or exception}."""
        indexes = [i for i, raw in enumerate(records) if isinstance(raw, dict)]
        mapped = [self._map(records[i]) for i in indexes]
        if not mapped:
            return {}
        try:
            out = list(self.adapter(mapped, self.context))
        except ADAPTER_ERRORS as exc:
            out = [exc] * len(mapped)
        if len(out) != len(mapped):  # a programming error in the adapter, not in the data
            raise TypeError(f"batch adapter {self.adapter.name!r} returned {len(out)} records for {len(mapped)}")
        return dict(zip(indexes, out))

    # --- one record ----------------------------------------------------------------------------
    def check(
        self,
        index: int,
        raw: Any,
        *,
        lax: bool = False,
        adapted: Any = None,
        nul_possible: bool = True,
        numbers_possible: bool = True,
    ):
        """(index, key, record) for a valid record, else a Problem. `adapted`: a batch adapter's
        output for this record. What its batch says of all its records: `lax`, the values are text
        to coerce (CSV); `nul_possible`, some text may hold a NUL character (PostgreSQL stores none in
        text or JSON: such a record is refused); `numbers_possible`, some value may be a Decimal (an
        exact JSON number) or a non-finite float (see _plain_numbers). False skips looking."""
        if isinstance(raw, Unparseable):
            return Problem(index, None, Code.PARSE_ERROR, raw.reason, record=raw.text)
        if not isinstance(raw, dict):
            return Problem(
                index, None, Code.PARSE_ERROR, f"record is not an object but {_kind(raw)}", record=_jsonable(raw)
            )
        if self.adapter is not None and self.adapter.batch:
            record = adapted
        else:
            record = self._map(raw)
            if self.adapter is not None:
                try:
                    record = self.adapter(record, self.context)
                except ADAPTER_ERRORS as exc:
                    record = exc
        if isinstance(record, BaseException):
            exc, mapped = record, self._map(raw)
            return Problem(
                index,
                self._readable(mapped),
                Code.INVALID,
                f"adapter rejected the record: {exc}",
                fields={"__all__": [str(exc)]},
                record=raw,
            )
        if not isinstance(record, dict):
            raise TypeError(f"adapter {self.adapter.name!r} returned {_kind(record)}, not a record (dict)")
        key, why = self.target.read_key(record, lax=lax)
        if why:
            return Problem(index, None, Code.MISSING_KEY, why, record=raw)
        readable = _readable_key(key)
        if lax:
            record = self._parse_json_cells(record)
            if isinstance(record, Problem):
                record.index, record.key, record.record = index, readable, raw
                return record
        nul = _fields_with_nul(record) if nul_possible else None
        if nul:
            return Problem(
                index,
                readable,
                Code.INVALID,
                f"invalid field(s): {', '.join(nul)}",
                fields={name: ["NUL characters (\\u0000) are not allowed."] for name in nul},
                record=raw,
            )
        if numbers_possible:
            record, odd = _plain_numbers(record, self.decimal_fields)
            if odd:
                return Problem(
                    index,
                    _readable_key(key),
                    Code.INVALID,
                    f"invalid field(s): {', '.join(odd)}",
                    fields={name: ["Not a finite number."] for name in odd},
                    record=raw,
                )
        try:
            clean = msgspec.convert(record, self.target.schema, strict=not lax)
            return index, self.target.key_of(clean), clean
        except (msgspec.ValidationError, ValueError, TypeError, ArithmeticError):
            code, fields = self.explain(record, lax=lax)
            unknown = [n for n in fields if n not in self.target.struct_fields and n != "__all__"]
            bad = [n for n in fields if n not in unknown]
            parts = ([f"unknown field(s): {', '.join(unknown)}"] if unknown else []) + (
                [f"invalid field(s): {', '.join(bad)}"] if bad else []
            )
            message = "; ".join(parts)
            return Problem(index, readable, code, message, fields=fields, record=raw)

    def _readable(self, record: dict):
        key, why = self.target.read_key(record)
        return None if why else _readable_key(key)

    def _map(self, raw: dict) -> dict:
        if not self.field_map:
            return raw
        out = {}
        for name, value in raw.items():
            if name in self.field_map:
                name = self.field_map[name]
                if name is None:
                    continue
            out[name] = value
        return out

    def _parse_json_cells(self, record: dict):
        for name in self.target.json_fields & record.keys():
            value = record[name]
            if isinstance(value, str):
                try:  # exact numbers, and no NaN or Infinity tokens (json.loads would take them)
                    record[name] = msgspec.json.Decoder(float_hook=ExactNumbers()).decode(value)
                except (msgspec.DecodeError, RecursionError):  # RecursionError: a cell nested too deeply
                    return Problem(
                        0, None, Code.INVALID, f"invalid field(s): {name}", fields={name: ["Not a valid JSON value."]}
                    )
        return record

    def explain(self, record: dict, *, lax: bool = False) -> tuple[str, dict[str, list[str]]]:
        """Every problem of a failing record, field by field."""
        fields: dict[str, list[str]] = {}
        struct_fields = self.target.struct_fields
        for name, spec in struct_fields.items():
            if name not in record:
                if spec.required:
                    fields[name] = ["This field is required."]
                continue
            try:
                value = msgspec.convert(record[name], spec.type, strict=not lax)
                check = self.target.checks.get(name)
                if check is not None:
                    check(value)
            except msgspec.ValidationError as exc:
                fields[name] = [self.target.messages.get(name) or readable_message(str(exc))]
            except (ValueError, TypeError, ArithmeticError) as exc:
                fields[name] = [str(exc) or "Invalid value."]
        unknown = [name for name in record if name not in struct_fields]
        for name in unknown:
            fields[str(name)] = ["Unknown field."]
        if not fields:
            fields["__all__"] = ["The record failed validation."]
        return (Code.UNKNOWN_FIELD if unknown else Code.INVALID), fields


def _wants_decimal(tp) -> bool:
    """Whether a field's type takes a Decimal (then an exact JSON number stays exact in it)."""
    info = msgspec.inspect.type_info(tp)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(isinstance(t, msgspec.inspect.DecimalType) for t in info.types)
    return isinstance(info, msgspec.inspect.DecimalType)


def _plain_numbers(record: dict, decimal_fields) -> tuple[dict, list[str]]:
    """The record with its numbers as the schema reads them, and the fields holding a number that no
    JSON column can store. Decimals (exact JSON numbers) stay in Decimal fields and become floats
    everywhere else, as a typed decode would make them; NaN and infinities (protobuf doubles, or a
    number like 1e400 outside a Decimal field) are refused, field by field. The record itself is
    returned when nothing changes (the common case: this runs for every record of such a batch)."""
    odd: list[str] = []
    changed = None
    for name, value in record.items():
        kind = type(value)
        if kind in _PLAIN or (kind is Decimal and name in decimal_fields):
            continue
        plain = _floats(value)
        if plain is _NOT_FINITE:
            odd.append(str(name))
        elif plain is not value:
            if changed is None:
                changed = dict(record)
            changed[name] = plain
    return (record if changed is None else changed), odd


_NOT_FINITE = object()
_PLAIN = frozenset({str, int, bool, type(None)})


def _floats(value):
    """`value` with its Decimals as floats (`value` itself when it has none); _NOT_FINITE if a
    number anywhere in it is not finite."""
    kind = type(value)
    if kind is Decimal or kind is float:
        try:
            number = float(value)
        except ValueError:  # a signalling NaN (Decimal("sNaN")) has no float
            return _NOT_FINITE
        if number - number != 0:
            return _NOT_FINITE
        return value if kind is float else number
    if kind is dict or kind is list:
        out = None
        for k, v in value.items() if kind is dict else enumerate(value):
            if type(v) in _PLAIN:
                continue
            plain = _floats(v)
            if plain is _NOT_FINITE:
                return plain
            if plain is not v:
                if out is None:
                    out = kind(value)  # a copy: the caller's record is never changed
                out[k] = plain
        return value if out is None else out
    return value


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _fields_with_nul(record: dict) -> list[str]:
    """Fields holding a NUL character, which PostgreSQL cannot store in text or JSON: the one rule.
    The fast paths never apply it; they only leave a batch in which a NUL is possible to the careful
    path (an escaped \\u0000 in JSON bytes, the only way JSON text holds one; a columnar batch's
    `nul_possible`), and check() looks only where its batch said one is possible."""
    return [str(name).replace("\x00", "\\u0000") for name, value in record.items() if _has_nul(name) or _has_nul(value)]


# --- msgspec's messages as sentences (one place: every per-field reason of a schema check) ----------
# msgspec says "Expected `str` matching regex '^[A-Z]{3}$'"; the checks of the targets say "Must be
# at least 0.": a reason reads the same whichever of the two found it. A target can give its own
# sentence per field (Target.messages), e.g. for a pattern no generic sentence can describe.

_NOUNS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "decimal": "a decimal number",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
    "datetime": "a date and time",
    "date": "a date",
    "time": "a time",
    "uuid": "a UUID",
    "bytes": "base64 text",
    "timedelta": "a duration",
}
_GOT = {"float": "a number with a fraction"}
_SIZED = {"str": "characters", "array": "items", "object": "entries", "bytes": "bytes"}
_BOUNDS = {">=": "at least {}", "<=": "at most {}", ">": "greater than {}", "<": "less than {}"}
# patterns common enough to deserve a sentence; any other: "Must match the pattern ..."
_PATTERNS = [
    (r"\^\[A-Z\]\{(\d+)\}\$", "Must be {} upper-case letters."),
    (r"\^\[a-z\]\{(\d+)\}\$", "Must be {} lower-case letters."),
    (r"\^(?:\[0-9\]|\\d)\{(\d+)\}\$", "Must be {} digits."),
    (r"\^\[\^@\\s\]\+@\[\^@\\s\]\+\$", "Must be an e-mail address."),
]
_MESSAGES = [
    (re.compile(r"Expected `(\w+)` matching regex '(.*)'"), lambda m: _pattern_sentence(m[2])),
    (re.compile(r"Expected `(\w+)` of length (>=|<=) (\d+)"), lambda m: _length_sentence(m[1], m[2], int(m[3]))),
    (re.compile(r"Expected `(\w+)` (>=|<=|>|<) (\S+)"), lambda m: f"Must be {_BOUNDS[m[2]].format(m[3])}."),
    (re.compile(r"Expected `(\w+)` that's a multiple of (\S+)"), lambda m: f"Must be a multiple of {m[2]}."),
    (
        re.compile(r"Expected `([\w |]+)`, got `(\w+)`"),
        lambda m: f"Must be {_nouns(m[1])}, not {_GOT.get(m[2]) or _NOUNS.get(m[2], m[2])}.",
    ),
    (re.compile(r"Invalid decimal string"), lambda m: "Must be a decimal number."),
    (re.compile(r"Invalid RFC3339 encoded datetime"), lambda m: "Must be a date and time like 2024-01-31T12:00:00Z."),
    (re.compile(r"Invalid RFC3339 encoded date"), lambda m: "Must be a date like 2024-01-31."),
    (re.compile(r"Invalid RFC3339 encoded time"), lambda m: "Must be a time like 12:00:00."),
    (re.compile(r"Expected `\w+` with a timezone component"), lambda m: "Must include a time zone (Z or +01:00)."),
    (re.compile(r"Expected `\w+` with no timezone component"), lambda m: "Must not include a time zone."),
    (re.compile(r"Invalid UUID"), lambda m: "Must be a UUID."),
    (re.compile(r"Invalid enum value (.*)"), lambda m: f"{m[1]} is not one of the allowed values."),
]
_AT = re.compile(r" - at `\$(.*)`$")


def readable_message(text: str) -> str:
    """A msgspec validation message as a sentence, with where inside the value when not at its top."""
    at = _AT.search(text)
    path = ""
    if at:
        text, path = text[: at.start()], at[1].lstrip(".")
    for pattern, sentence in _MESSAGES:
        match = pattern.fullmatch(text)
        if match:
            text = sentence(match)
            break
    else:
        text = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
    return f"{text[:-1]} (at {path})." if path else text


def _nouns(types: str) -> str:
    names = [t.strip() for t in types.split("|")]
    if "int" in names and "float" in names:  # `int | float`: any number
        names = [n for n in names if n != "int"]
    return " or ".join(_NOUNS.get(n, n) for n in names)


def _length_sentence(kind: str, op: str, n: int) -> str:
    if kind == "str" and op == ">=" and n == 1:
        return "Must not be empty."
    unit = _SIZED.get(kind, "items")
    return (
        f"Must be at {'least' if op == '>=' else 'most'} {n:,} {unit[:-1] if n == 1 else unit} long."
        if kind == "str"
        else f"Must have at {'least' if op == '>=' else 'most'} {n:,} {unit[:-1] if n == 1 else unit}."
    )


def _pattern_sentence(pattern: str) -> str:
    pattern = pattern.replace("\\\\", "\\")  # msgspec writes the pattern's backslashes doubled
    for known, sentence in _PATTERNS:
        match = re.fullmatch(known, pattern)
        if match:
            return sentence.format(*match.groups())
    return f"Must match the pattern {pattern}."


def unknown_reference(target_name: str, value) -> str:
    return f"Unknown {target_name} key {value!r} (no such row of this customer)."


def duplicate_message(target: Target, key) -> str:
    return f"key {target.key_display(key)!r} appeared earlier in this run; the first one stays"


def _readable_key(key):
    """The key when it can be shown and stored with an error: no text part longer than
    MAX_KEY_LENGTH or holding a NUL character."""
    for part in key if isinstance(key, tuple) else (key,):
        if isinstance(part, str) and (len(part) > MAX_KEY_LENGTH or "\x00" in part):
            return None
    return key


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), type(value).__name__
    )


def _jsonable(value):
    try:
        msgspec.json.encode(value)
        return value
    except (TypeError, msgspec.EncodeError):
        return repr(value)
