"""Rate limits: per API key (INTEGRATIONS_THROTTLE_RATE, DRF notation, default 1200/min), and per
client address for requests without a valid key (INTEGRATIONS_ANON_THROTTLE_RATE, default 60/min),
so keys cannot be guessed at speed.

The counts live in Django's default cache: with several web processes that cache must be shared
(Redis via REDIS_URL, or CACHE_URL naming the database cache), else each process counts alone."""

import hashlib
import ipaddress

from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from ..conf import conf
from ..models import ApiKey

# how long a key that authenticated stays known to pass a throttled address (see AddressThrottle)
KNOWN_KEY_SECONDS = 24 * 3600


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        return conf.THROTTLE_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None  # unauthenticated requests end in 401 before this
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class AddressThrottle(SimpleRateThrottle):
    """Requests without a valid key (none, a bad, revoked or expired one), counted per client address.

    Used by the authentication itself, not as a DRF throttle class (DRF throttles after a failed
    authentication has already answered 401): `check()` comes before a key is looked up, so an
    address over the rate gets 429 without a database query or a hash, and learns nothing about the
    key it sent; `failed()` counts a refusal. Only a key that authenticated within the last day
    (remembered by its digest) passes a throttled address: a customer behind the same NAT as a
    guesser keeps syncing. Views without an API key (the schema, the docs, health checks) never
    meet this throttle."""

    scope = "anon_address"

    def get_rate(self):
        return conf.ANON_THROTTLE_RATE

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.client_address(request)}

    def client_address(self, request) -> str:
        """REMOTE_ADDR; behind a load balancer set REST_FRAMEWORK["NUM_PROXIES"] and DRF's rule reads
        X-Forwarded-For (never trusted otherwise: a client could write anything there). An IPv6
        client counts per /64, the block one subscriber gets."""
        if api_settings.NUM_PROXIES is not None:
            address = self.get_ident(request)
        else:
            address = request.META.get("REMOTE_ADDR", "")
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return address or "unknown"
        if ip.version == 6:
            if ip.ipv4_mapped:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def check(self, request, raw_key: str = "") -> None:
        """Raise Throttled when the address is over its rate, unless `raw_key` is a known good key."""
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests and not (raw_key and self.cache.get(_known_key(raw_key))):
            raise Throttled(wait=self.wait())

    def failed(self) -> None:
        """Count one request refused for its key (after check())."""
        self.throttle_success()

    def remember(self, raw_key: str) -> None:
        """This key authenticated: it may pass a throttled address for a while."""
        self.cache.set(_known_key(raw_key), 1, KNOWN_KEY_SECONDS)


def _known_key(raw_key: str) -> str:
    return "throttle_known_key_" + hashlib.sha256(raw_key.encode()).hexdigest()
