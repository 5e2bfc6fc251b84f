"""Reporting back (SPEC section 6): webhooks and e-mail. Filled in by the reporting issue."""


def run_event(*, run_id, status: str) -> None:
    """Called after a run reaches an end state or needs_review."""


def stuck_alert(*, run_id) -> None:
    """Called once when a run has been processing longer than INTEGRATIONS_STUCK_AFTER."""


def deliver_due() -> int:
    return 0
