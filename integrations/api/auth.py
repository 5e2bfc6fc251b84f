"""Who is calling: `Authorization: Bearer <prefix>.<secret>` against ApiKey (hashed, revocable,
optional expiry). No key, a bad, revoked or expired key: 401, and counted against the client's
address (429 once over INTEGRATIONS_ANON_THROTTLE_RATE). A key of an inactive customer: 403."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from .. import logcontext
from ..models import ApiKey
from .throttling import AddressThrottle

KEYWORD = "Bearer"
# last_used_at is written at most this often per key: one UPDATE a minute, not one per request
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyAuthentication(BaseAuthentication):
    """Sets request.user to the key's Customer and request.auth to the ApiKey."""

    def authenticate_header(self, request):
        return f'{KEYWORD} realm="api"'

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # HasActiveCustomerKey refuses (and counts) it
        keyword, _, raw = header.partition(" ")
        raw = raw.strip()
        throttle = AddressThrottle()
        throttle.check(request, raw)  # before the key is looked at: a throttled guess costs nothing
        try:
            key = self._verify(keyword, raw)
        except exceptions.AuthenticationFailed:
            throttle.failed()
            raise
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
            throttle.remember(raw)  # as seldom as last_used_at is written
        logcontext.update(customer=key.customer.slug)
        return key.customer, key

    def _verify(self, keyword: str, raw: str) -> ApiKey:
        if keyword.lower() != KEYWORD.lower() or not raw:
            raise exceptions.AuthenticationFailed("use `Authorization: Bearer <api key>`")
        prefix, dot, secret = raw.partition(".")
        if not dot or not prefix or not secret:
            raise exceptions.AuthenticationFailed("invalid API key")
        key = ApiKey.objects.select_related("customer").filter(prefix=prefix).first()
        if key is None or not key.is_valid(raw):
            raise exceptions.AuthenticationFailed("invalid API key")
        if key.revoked:
            raise exceptions.AuthenticationFailed("this API key has been revoked")
        if key.has_expired:
            raise exceptions.AuthenticationFailed("this API key has expired")
        return key


class HasActiveCustomerKey(BasePermission):
    """A valid key is required (401 otherwise); its customer must be active (403 otherwise)."""

    message = "the customer of this API key is not active"

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            throttle = AddressThrottle()
            throttle.check(request)
            throttle.failed()
            raise exceptions.NotAuthenticated("an API key is required: `Authorization: Bearer <api key>`")
        return bool(key.customer.is_active)
