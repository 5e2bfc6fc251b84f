"""The outcome of a run as the client hands it back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# The states a run does not leave by itself (needs_review waits for staff, but the sender is done).
END_STATES = frozenset({"succeeded", "partial", "failed", "cancelled"})
SETTLED_STATES = END_STATES | {"needs_review"}

# Exit statuses of `integrations-sync`, the same as the server's `sync_file --wait`.
EXIT_STATUS = {"succeeded": 0, "failed": 1, "cancelled": 1, "partial": 3, "needs_review": 4}


@dataclass
class Report:
    """A run as last seen: `status`, `counts`, `message`, `run_id`, and its record errors on demand."""

    run: dict[str, Any]
    _errors: Callable[..., Iterator[dict[str, Any]]] | None = field(default=None, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        return self.run["id"]

    id = run_id

    @property
    def status(self) -> str:
        return self.run["status"]

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.run.get("counts") or {})

    @property
    def message(self) -> str:
        return self.run.get("message") or ""

    @property
    def dry_run(self) -> bool:
        return bool(self.run.get("dry_run"))

    @property
    def settled(self) -> bool:
        """True once the run is in an end state or held for review."""
        return self.status in SETTLED_STATES

    @property
    def ok(self) -> bool:
        """True when the run applied (or, dry, would apply) every record: `succeeded`."""
        return self.status == "succeeded"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.status, 1)

    def errors(self, code: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record error of the run (seq, index, key, code, message, fields, record), page by page."""
        if self._errors is None:
            return iter(())
        return self._errors(self.run_id, code=code)

    def summary(self) -> str:
        counts = self.counts
        parts = ", ".join(
            f"{name} {counts[name]}"
            for name in ("received", "created", "updated", "unchanged", "deleted", "failed")
            if name in counts
        )
        text = f"run {self.run_id}: {self.status}{' (dry run)' if self.dry_run else ''}"
        if parts:
            text += f"; {parts}"
        if self.message:
            text += f"\n{self.message}"
        return text

    def __str__(self) -> str:
        return self.summary()


def format_error(error: dict[str, Any]) -> list[str]:
    """One record error as readable lines: where it is, its key, code and message, then one line
    per field with its reasons (the `fields` map), e.g.

        batch 1 #20, key BAD: invalid: invalid field(s): price
            price: At most 2 decimal places."""
    key = error.get("key")
    where = f"batch {error.get('seq')} #{error.get('index')}"
    lines = [f"{where}, {f'key {key}' if key is not None else 'no key'}: {error.get('code')}: {error.get('message')}"]
    for name, reasons in (error.get("fields") or {}).items():
        if isinstance(reasons, (list, tuple)):
            reasons = " ".join(str(reason) for reason in reasons)
        lines.append(f"    {'(record)' if name == '__all__' else name}: {reasons}")
    return lines
