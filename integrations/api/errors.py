"""Every error of the API as one JSON body: {"error": {"code", "message", "details"}}.

`exception_handler` maps what a view raises (IntegrationsError subclasses, DRF's exceptions,
Django's own) to that body; the plain views below give the same body for what never reaches a
DRF view (an unknown URL under /api/, a server error, a body Django itself refused)."""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from ..exceptions import IntegrationsError

logger = logging.getLogger("integrations.api")

API_PREFIX = "/api/"


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _plain(value):
    """DRF's ErrorDetail trees as plain JSON (lists, dicts, strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _validation_details(detail) -> dict:
    detail = _plain(detail)
    if isinstance(detail, dict):
        return detail
    return {"non_field_errors": detail if isinstance(detail, list) else [detail]}


def _first_message(details: dict) -> str:
    for field, messages in details.items():
        message = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(message, dict):
            return f"{field}: invalid"
        return f"{field}: {message}" if field != "non_field_errors" else str(message)
    return "the request is not valid"


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER for the API views (set on the base view, not globally)."""
    headers = {}
    if isinstance(exc, IntegrationsError):
        code, message, details, http_status = exc.code, exc.message, exc.details, exc.status
        if http_status >= 500:
            logger.error("API error %s: %s", code, message)
    elif isinstance(exc, Http404):
        code, message, details, http_status = "not_found", "not found", {}, 404
    elif isinstance(exc, DjangoPermissionDenied):
        code, message, details, http_status = "permission_denied", "permission denied", {}, 403
    elif isinstance(exc, RequestDataTooBig):
        code, message, details, http_status = "too_large", str(exc) or "request body too large", {}, 413
    elif isinstance(exc, SuspiciousOperation):
        code, message, details, http_status = "bad_request", str(exc) or "bad request", {}, 400
    elif isinstance(exc, exceptions.ValidationError):
        details = _validation_details(exc.detail)
        code, message, http_status = "invalid", _first_message(details), exc.status_code
    elif isinstance(exc, exceptions.APIException):
        http_status = exc.status_code
        code = exc.default_code
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (dict, list)) else str(exc.default_detail)
        details = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled):
            seconds = max(1, math.ceil(wait or 1))
            headers["Retry-After"] = str(seconds)
            message = f"too many requests; retry in {seconds} s"
            details = {"retry_after": seconds}
    else:
        logger.exception("unexpected error in %s", context.get("view").__class__.__name__ if context else "API")
        code, message, details, http_status = "server_error", "internal error; it has been logged", {}, 500
    set_rollback()
    return Response(error_body(code, message, details), status=http_status, headers=headers)


# --- plain Django views (unknown URLs, Django-level failures) ----------------------------------


@csrf_exempt  # a POST to an unknown URL is a 404, not a CSRF refusal (there are no cookies in this API)
def api_not_found(request, *args, **kwargs):
    """The catch-all of /api/: an unknown URL is a JSON 404, never an HTML page."""
    hint = "" if request.path.endswith("/") else " (API paths end with a slash)"
    return JsonResponse(error_body("not_found", f"no such endpoint: {request.path}{hint}"), status=404)


def bad_request(request, exception=None, *args, **kwargs):
    if request.path.startswith(API_PREFIX):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("too_large", "request body too large"), status=413)
        return JsonResponse(error_body("bad_request", "bad request"), status=status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception, *args, **kwargs)


def page_not_found(request, exception=None, *args, **kwargs):
    if request.path.startswith(API_PREFIX):
        return api_not_found(request)
    return defaults.page_not_found(request, exception, *args, **kwargs)


def server_error(request, *args, **kwargs):
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("server_error", "internal error; it has been logged"), status=500)
    return defaults.server_error(request, *args, **kwargs)
