"""Webhooks (SPEC section 6), per the Standard Webhooks scheme.

One event of a run (run.succeeded, run.needs_review, ...) is one WebhookDelivery with a stable
`webhook-id` and event timestamp; each try is a WebhookAttempt. The first try happens at once; a
failed one is tried again by `deliver_due()` (a django-q2 schedule, every minute) after a backoff,
so no worker ever sleeps waiting for a retry. A delivery is claimed by moving its next_attempt_at
forward in one conditional UPDATE, so two workers never send the same try twice at once.

No receiver can hold a worker: a try has one wall-clock deadline, INTEGRATIONS_WEBHOOK_TIMEOUT, for
connecting, sending and the answer's headers (the body is never read); and the tries run on their
own django-q2 cluster when INTEGRATIONS_WEBHOOK_CLUSTER names one, never on a worker of the runs.
"""

import hashlib
import ipaddress
import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from . import metrics
from .conf import conf
from .models import SyncRun, WebhookAttempt, WebhookDelivery
from .selectors import run_representation

log = logging.getLogger("integrations")

# seconds to wait before try n+1 after try n failed: 1st try at once, then 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h; eight tries over about 27 hours, then the delivery has failed.
BACKOFF = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
MAX_ATTEMPTS = len(BACKOFF) + 1
# a Retry-After above this is not honoured to the letter (a receiver cannot park us for a week)
MAX_RETRY_AFTER = 36_000
# answers that will not change by sending the same request again: stop at once
PERMANENT_STATUSES = {410, 413, 415}
# how many due deliveries one deliver_due() call sends, and for how long at most
DUE_BATCH = 200
DUE_BUDGET_SECONDS = 45
USER_AGENT = "integrations-webhooks/1.0"

Status = WebhookDelivery.Status


class Refused(Exception):
    """The URL may not be called (a private address, a bad scheme): a failed try, not a crash."""

    def __init__(self, message: str, *, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


# --- events ---------------------------------------------------------------------------------


def webhook_id_for(run_id, event: str) -> str:
    """Stable for one event of one run, so a task delivered twice creates one delivery."""
    return "msg_" + hashlib.sha256(f"{run_id}|{event}".encode()).hexdigest()[:32]


def delivery_create(*, run: SyncRun, status: str) -> tuple[WebhookDelivery | None, bool]:
    """The delivery of the event `run.<status>` when the integration has a webhook URL.
    Returns (delivery, created); an event already recorded is returned as it is."""
    integration = run.integration
    if not integration.webhook_url:
        return None, False
    event = f"run.{status}"
    webhook_id = webhook_id_for(run.pk, event)
    existing = WebhookDelivery.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing, False
    # the time of the event: when the run reached this state (the same on every retry)
    happened = run.finished_at if run.status == status and run.finished_at else timezone.now()
    data = run_representation(run)
    data["status"] = status  # the state of this event, even if the run has moved on since
    payload = {"type": event, "timestamp": _iso(happened), "data": data}
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                run=run,
                event=event,
                webhook_id=webhook_id,
                event_timestamp=happened,
                url=integration.webhook_url,
                payload=payload,
                status=Status.PENDING,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:  # the same event recorded by a concurrent task
        return WebhookDelivery.objects.get(webhook_id=webhook_id), False
    return delivery, True


def body_of(delivery: WebhookDelivery) -> str:
    """The exact bytes sent. Keys sorted: the stored JSON (jsonb) does not keep their order."""
    return json.dumps(delivery.payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"))


def sign_headers(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    at = at.astimezone(UTC)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp()))}
    if secret:
        headers["webhook-signature"] = Webhook(secret).sign(webhook_id, at, body)
    return headers


# --- sending --------------------------------------------------------------------------------


def deliver_due(*, now: datetime | None = None, limit: int = DUE_BATCH) -> int:
    """Send every pending delivery whose next try is due; returns how many tries were made."""
    started = time.monotonic()
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in due:
        if time.monotonic() - started > DUE_BUDGET_SECONDS:
            break  # the next call of the schedule goes on; a run of the schedule stays short
        if attempt(delivery_id=pk) is not None:
            sent += 1
    return sent


def attempt(*, delivery_id) -> WebhookAttempt | None:
    """One try of a pending delivery that is due, recorded; None when it is not ours to send."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    integration = delivery.run.integration
    number = delivery.attempts + 1
    started_at = timezone.now()
    clock = time.monotonic()
    status_code, error, retry_after, permanent = None, "", None, False
    url = integration.webhook_url or ""
    deadline = Deadline(conf.WEBHOOK_TIMEOUT)
    try:
        if not url:
            raise Refused("the integration has no webhook URL any more")
        with deadline:
            check_url(url)
            body = body_of(delivery)
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **sign_headers(
                    secret=integration.webhook_secret, webhook_id=delivery.webhook_id, body=body, at=started_at
                ),
            }
            with _session(url) as session:
                # stream: only the status and headers matter; a huge body is never read into memory
                response = session.post(
                    url,
                    data=body.encode(),
                    headers=headers,
                    timeout=conf.WEBHOOK_TIMEOUT,
                    allow_redirects=False,
                    stream=True,
                )
                status_code = response.status_code
                response.close()
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
            if 300 <= status_code < 400:
                error += f": redirect to {response.headers.get('location', '?')} not followed"
            if status_code in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=started_at)
            permanent = status_code in PERMANENT_STATUSES
    except Refused as exc:
        error, permanent = str(exc), exc.permanent
    except requests.RequestException as exc:
        if deadline.expired or isinstance(exc, requests.Timeout):
            status_code, error = None, f"timed out: no complete answer within {conf.WEBHOOK_TIMEOUT} s"
        else:
            error = f"{type(exc).__name__}: {exc}"[:1000]
    except Exception as exc:  # a bad secret, say: record it and try again later (staff may fix it)
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = int((time.monotonic() - clock) * 1000)
    return _record(
        delivery,
        number=number,
        url=url,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error,
        retry_after=retry_after,
        permanent=permanent,
    )


def _claim(delivery_id) -> WebhookDelivery | None:
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.select_related("run__integration")
        .filter(pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if delivery is None:
        return None
    # a lease: if this worker dies mid-request, the delivery is due again after it
    lease = now + timedelta(seconds=conf.WEBHOOK_TIMEOUT + 120)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts, next_attempt_at=delivery.next_attempt_at
    ).update(next_attempt_at=lease)
    return delivery if claimed == 1 else None


def _record(
    delivery: WebhookDelivery,
    *,
    number: int,
    url: str,
    started_at,
    duration_ms: int,
    status_code,
    error: str,
    retry_after: int | None,
    permanent: bool,
) -> WebhookAttempt:
    delivered = status_code is not None and 200 <= status_code < 300
    next_at = None
    if not delivered and not permanent and number < MAX_ATTEMPTS:
        delay = BACKOFF[number - 1]
        if retry_after is not None:
            delay = min(max(retry_after, 1), MAX_RETRY_AFTER)
        next_at = timezone.now() + timedelta(seconds=delay)
    if delivered:
        status = Status.DELIVERED
    elif next_at is None:
        status = Status.FAILED
        if not permanent:
            error = f"{error} (gave up after {number} attempts)"
    else:
        status = Status.PENDING
    attempt_row = WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started_at,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error,
        next_attempt_at=next_at,
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=number,
        next_attempt_at=next_at,
        last_status_code=status_code,
        last_error=error,
        url=url or delivery.url,
    )
    if not delivered:
        log.info("webhook %s try %d to %s failed: %s", delivery.webhook_id, number, url, error)
    metrics.webhook_attempted({Status.DELIVERED: "delivered", Status.FAILED: "failed"}.get(status, "retry"))
    return attempt_row


# --- rules ----------------------------------------------------------------------------------


def check_url(url: str) -> None:
    """Refuse what a webhook may not call: other schemes, and hosts any of whose addresses is
    private, loopback, link-local or otherwise not public (unless WEBHOOK_ALLOW_PRIVATE)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"refused: {url!r} is not an http(s) URL")
    if conf.WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise Refused(f"could not resolve {parts.hostname}: {exc}", permanent=False) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not is_public(address):
            raise Refused(
                f"refused: {parts.hostname} resolves to the non-public address {address} "
                "(INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE is off)"
            )


class Deadline:
    """One wall-clock limit for a whole try. `requests` times each socket operation on its own, so a
    receiver that sends a byte of its headers every few seconds is never "timed out" and holds the
    worker as long as it likes; this watchdog shuts every socket of the try down when the time is up,
    which ends a blocked connect, send or read at once. The sockets are registered by the connection
    classes below (`_new_conn`), as duplicates: the shutdown reaches the connection even after TLS has
    wrapped the socket, and never a descriptor that another socket reuses later."""

    _current = threading.local()

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        Deadline._current.value = self
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        Deadline._current.value = None
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    @classmethod
    def watch(cls, sock: socket.socket) -> None:
        deadline = getattr(cls._current, "value", None)
        if deadline is None:
            return
        with deadline._lock:
            deadline._sockets.append(sock.dup())
            expired = deadline.expired
        if expired:  # the time ran out while connecting (a slow DNS answer, say)
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        Deadline.watch(sock)
        return sock


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        Deadline.watch(sock)
        return sock


class _GuardedHTTPConnection(_WatchedHTTPConnection):
    """Checks the address actually connected to: the host may resolve differently now than when
    check_url() looked (DNS rebinding)."""

    def _new_conn(self):
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _GuardedHTTPSConnection(_WatchedHTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


def _pool(base, connection_cls):
    return type(f"{connection_cls.__name__}Pool", (base,), {"ConnectionCls": connection_cls})


_WATCHED_POOLS = {
    "http": _pool(urllib3.HTTPConnectionPool, _WatchedHTTPConnection),
    "https": _pool(urllib3.HTTPSConnectionPool, _WatchedHTTPSConnection),
}
_GUARDED_POOLS = {
    "http": _pool(urllib3.HTTPConnectionPool, _GuardedHTTPConnection),
    "https": _pool(urllib3.HTTPSConnectionPool, _GuardedHTTPSConnection),
}


class _DeliveryAdapter(requests.adapters.HTTPAdapter):
    """Every connection watched by the try's Deadline; the peer's address checked unless `guard` is
    off (private addresses allowed, or an egress proxy is the peer)."""

    def __init__(self, *, guard: bool):
        self._pools = _GUARDED_POOLS if guard else _WATCHED_POOLS
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pools)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


def _check_peer(sock, host) -> None:
    address = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    if not is_public(address):
        sock.close()
        raise Refused(
            f"refused: {host} connected to the non-public address {address} (INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE is off)"
        )


def _session(url: str) -> requests.Session:
    session = requests.Session()
    # through an egress proxy of the environment (HTTPS_PROXY), the proxy is the peer: check_url()
    # has vetted the host, the proxy's own rules do the rest
    via_proxy = bool(requests.utils.get_environ_proxies(url))
    adapter = _DeliveryAdapter(guard=not conf.WEBHOOK_ALLOW_PRIVATE and not via_proxy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# NAT64 (RFC 6052): the well-known prefix carries the IPv4 address in its last 32 bits; where the
# local-use prefix puts it depends on the operator's prefix length, so none of it counts as public
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")


def is_public(address) -> bool:
    """Whether a webhook may connect to `address`. An IPv6 address that carries an IPv4 address
    (IPv4-mapped, NAT64, 6to4, Teredo) leads to that IPv4 address, which must be public too: else
    2002:a9fe:a9fe:: would reach 169.254.169.254 through a 6to4 relay."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL_USE:
            return False
        if address.ipv4_mapped:
            return _plainly_public(address.ipv4_mapped)
        if address in NAT64_WELL_KNOWN:
            return _plainly_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded = [address.sixtofour] if address.sixtofour else list(address.teredo or ())
        if not all(_plainly_public(ipv4) for ipv4 in embedded):
            return False
    return _plainly_public(address)


def _plainly_public(address) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def parse_retry_after(value: str | None, *, now: datetime) -> int | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - now).total_seconds()))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
