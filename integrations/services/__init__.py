"""The service layer: every action of the spec, called alike by the API, the admin, the commands
and the tasks. Reads live in selectors.py."""

from .preview import preview_get, preview_run
from .processing import (
    batch_validate,
    dry_run_start,
    integration_kick,
    record_task_error,
    run_apply,
    run_cleanup,
    run_fail,
    run_process,
    sweep,
    upload_split,
)
from .runs import batch_receive, run_cancel, run_complete, run_create, run_retry, run_review, upload_create
from .setup import (
    api_key_create,
    api_key_revoke,
    customer_check,
    customer_create,
    customer_get,
    customer_update,
    integration_check,
    integration_create,
    integration_get,
    integration_update,
    validate_emails,
    validate_integration_settings,
    validate_webhook_secret,
    validate_webhook_url,
)
from .undo import run_undo, undo_candidate, undo_preview, undo_refusal

__all__ = [
    "api_key_create", "api_key_revoke", "batch_receive", "batch_validate", "customer_create", "customer_get",
    "dry_run_start", "integration_create", "integration_get", "integration_kick", "record_task_error", "run_apply",
    "preview_get", "preview_run",
    "run_cancel", "run_cleanup", "run_undo", "undo_candidate", "undo_preview", "undo_refusal", "run_complete", "run_create", "run_fail", "run_process", "run_retry", "run_review",
    "customer_check", "customer_update", "integration_check", "integration_update", "validate_emails",
    "sweep", "upload_create", "upload_split", "validate_integration_settings",
    "validate_webhook_secret", "validate_webhook_url",
]
