"""What every log line (and every error report) says it belongs to: the request id, the task, the
run, its integration and customer, the batch (SPEC section 14).

A context variable holds these for as long as a request or a task is handled; `ContextFilter`,
set on the log handlers, copies them onto every record, whoever logs it (our code, Django,
django-q2), so a JSON formatter (LOG_FORMAT=json) emits them as fields of each line. With Sentry
loaded (SENTRY_DSN), the same values are tags of the events sent meanwhile. Nothing here imports
sentry_sdk: without a DSN it is never loaded.
"""

import contextlib
import contextvars
import logging
import re
import sys
import uuid

from django.core.signals import request_finished

FIELDS = ("request_id", "task", "run_id", "integration", "customer", "batch_seq")
REQUEST_ID_HEADER = "X-Request-ID"
# what a caller's X-Request-ID may be: short and plain, so it can neither forge log fields nor bloat them
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_EMPTY: dict = {}
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("integrations_log_context", default=_EMPTY)


def current() -> dict:
    return _context.get()


@contextlib.contextmanager
def bind(**values):
    """The values hold inside the block (nested blocks add to them) and are gone after it."""
    token = _context.set({**_context.get(), **_clean(values)})
    _tag_sentry(values)
    try:
        yield
    finally:
        _context.reset(token)


def update(**values) -> None:
    """Add values to the current block's context (e.g. the customer, once the API key is known).
    Outside any block this does nothing: a value must never outlive its request or task."""
    ctx = _context.get()
    if ctx is _EMPTY:
        return
    _context.set({**ctx, **_clean(values)})
    _tag_sentry(values)


def _clean(values: dict) -> dict:
    return {k: (str(v) if k == "run_id" else v) for k, v in values.items() if v is not None and v != ""}


def _sentry():
    """sentry_sdk when the project turned it on (SENTRY_DSN), else None; never imports it."""
    sdk = sys.modules.get("sentry_sdk")
    return sdk if sdk is not None and sdk.get_client().is_active() else None


def _tag_sentry(values: dict) -> None:
    sdk = _sentry()
    if sdk is not None:
        scope = sdk.get_isolation_scope()
        for key, value in _clean(values).items():
            scope.set_tag(key, value)


def report_exception(exc: BaseException) -> None:
    """Send a task's exception to Sentry (when on), tagged with the task's context. sentry-sdk has
    no django-q2 integration; its dedupe integration drops the second report of the same exception
    should django-q2's own error log reach Sentry too."""
    sdk = _sentry()
    if sdk is not None:
        with sdk.new_scope() as scope:
            for key, value in _context.get().items():
                scope.set_tag(key, value)
            sdk.capture_exception(exc)


@contextlib.contextmanager
def task_scope(**values):
    """The context of one task: its values bound, a Sentry scope of its own (so tags of one task
    never stick to the next one of the same worker process)."""
    sdk = _sentry()
    scope = sdk.isolation_scope() if sdk is not None else contextlib.nullcontext()
    with scope, bind(**values):
        yield


class ContextFilter(logging.Filter):
    """Put the context's fields on every record (None where there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, ctx.get(field))
        return True


def request_id_of(header: str | None) -> str:
    if header and _SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def clear(**kwargs) -> None:
    _context.set(_EMPTY)


class RequestContextMiddleware:
    """Binds a request id (the caller's X-Request-ID when it is safe, else a new one) for the
    request's log lines and returns it in the response; adds the run and integration of the URL.

    The context is set here and cleared on `request_finished`, not when this middleware returns:
    Django logs a 4xx/5xx answer (django.request) after the whole middleware chain, and that line
    must carry the request id too."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(clear, dispatch_uid="integrations.logcontext.clear")

    def __call__(self, request):
        request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        _context.set({"request_id": request_id})  # fresh: nothing of an earlier request survives
        _tag_sentry({"request_id": request_id})
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        update(run_id=view_kwargs.get("run_id"), integration=view_kwargs.get("slug"))
        return None
