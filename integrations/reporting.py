"""A run's report as plain text, for people at a terminal (`sync_file --wait`): the summary, the
counts, the first record errors each with its field-level reasons, and what to do next.

The client package prints the same shape (integrations_client.report.format_error), so a report
reads alike whichever way the file was sent."""

from .models import RecordError, SyncRun
from .selectors import run_errors

COUNTS = ("received", "created", "updated", "unchanged", "deleted", "failed")


def error_lines(error: RecordError) -> list[str]:
    """`batch 1 #20, key BAD: invalid: invalid field(s): price`, then one line per field's reasons."""
    who = f"key {error.key}" if error.key is not None else "no key"
    lines = [f"batch {error.seq} #{error.index}, {who}: {error.code}: {error.message}"]
    for name, reasons in (error.fields or {}).items():
        if isinstance(reasons, (list, tuple)):
            reasons = " ".join(str(reason) for reason in reasons)
        lines.append(f"    {'(record)' if name == '__all__' else name}: {reasons}")
    return lines


def run_report_text(run: SyncRun, *, max_errors: int = 10, review_hint: str = "", errors_hint: str = "") -> str:
    """The report; `review_hint` and `errors_hint` say, in the caller's terms, how to decide a held
    run and how to get every error."""
    counts = run.counts
    lines = [
        f"run {run.pk}: {run.status}{' (dry run)' if run.dry_run else ''}; "
        + ", ".join(f"{name} {counts.get(name, 0)}" for name in COUNTS)
    ]
    if run.message:
        lines.append(run.message)
    failed = counts.get("failed") or 0
    if failed and max_errors:
        lines.append("first errors:")
        for error in run_errors(run)[:max_errors]:
            lines.extend(f"  {line}" for line in error_lines(error))
        if failed > max_errors:
            lines.append(f"  ... and {failed - max_errors} more")
    if run.status == SyncRun.Status.NEEDS_REVIEW and review_hint:
        lines.append(f"next: held for staff review: nothing is applied until it is approved or rejected; {review_hint}")
    elif failed and run.status in (SyncRun.Status.PARTIAL, SyncRun.Status.FAILED) and errors_hint:
        lines.append(f"next: {errors_hint}")
    return "\n".join(lines)
