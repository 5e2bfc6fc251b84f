"""Rate limit per API key (INTEGRATIONS_THROTTLE_RATE, DRF notation, default 1200/min).

The counts live in Django's default cache: with several web processes that cache must be shared
(Redis via REDIS_URL, or CACHE_URL naming the database cache), else each process counts alone."""

from rest_framework.throttling import SimpleRateThrottle

from ..conf import conf
from ..models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        return conf.THROTTLE_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None  # unauthenticated requests end in 401 before this
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
