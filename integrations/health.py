"""Is the service healthy? (SPEC section 14): liveness and readiness of a web process, liveness of a
worker machine's django-q2 cluster.

- `/healthz` answers 200 as long as the process serves requests: it touches nothing, so a database
  outage never makes an orchestrator restart every web process at once.
- `/readyz` checks what a web process needs to accept a batch: every configured database, the
  migrations, the broker, the cache and file storage. A failure answers 503 with the failed checks
  named, so a load balancer stops sending traffic until they are back.
- `cluster_alive()` (manage.py worker_alive) tells whether a django-q2 cluster on this host has
  reported itself recently (its `Stat`, which the cluster refreshes every guard cycle in the broker,
  or with the ORM broker in Django's cache).

Both views are plain Django views (never DRF: no authentication, no throttle) and skip Django's
request logging of a 503: a failing probe polled every few seconds is one WARNING here, not an
ERROR (or an error-tracker event) per poll.
"""

import logging
import socket
import time

from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger("integrations")
STORAGE_PROBE = "integrations/readyz-probe"
_migrations_done = False  # once applied they stay applied for this process's life: checked until then


def check_databases() -> dict[str, str]:
    failed = {}
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            failed[f"database:{alias}"] = _why(exc)
    return failed


def check_migrations() -> dict[str, str]:
    global _migrations_done
    if _migrations_done:
        return {}
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return {"migrations": _why(exc)}
    if pending:
        return {"migrations": f"{len(pending)} not applied"}
    _migrations_done = True
    return {}


def check_broker() -> dict[str, str]:
    from django_q.brokers import get_broker

    try:
        if get_broker().ping() is False:
            return {"broker": "no answer"}
    except Exception as exc:
        return {"broker": _why(exc)}
    return {}


def check_cache() -> dict[str, str]:
    key = f"integrations:readyz:{socket.gethostname()}"
    try:
        cache = caches["default"]
        cache.set(key, "1", 30)
        if cache.get(key) != "1":
            return {"cache": "a value written was not read back"}
    except Exception as exc:
        return {"cache": _why(exc)}
    return {}


def check_storage() -> dict[str, str]:
    """Write and delete a few bytes: accepting a batch means storing it (a read-only or missing
    volume, or an S3 bucket without write access, is not ready)."""
    try:
        name = default_storage.save(STORAGE_PROBE, ContentFile(b"ok"))
        default_storage.delete(name)
    except Exception as exc:
        return {"storage": _why(exc)}
    return {}


CHECKS = (check_databases, check_migrations, check_broker, check_cache, check_storage)


def readiness() -> dict[str, str]:
    """Every failed check by name, with a short reason; empty when ready."""
    failed: dict[str, str] = {}
    for check in CHECKS:
        failed.update(check())
    return failed


def _why(exc: Exception) -> str:
    # the class only: the body is unauthenticated, and a message may carry host names or paths
    return type(exc).__name__


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    failed = readiness()
    if not failed:
        return JsonResponse({"status": "ok"})
    log.warning("readyz: not ready: %s", ", ".join(f"{k} ({v})" for k, v in failed.items()))
    response = JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    response._has_been_logged = True  # Django's request logger would log every poll at ERROR
    return response


def cluster_alive(*, max_age: int, any_host: bool = False, now: float | None = None) -> tuple[bool, str]:
    """(alive, description): a django-q2 cluster (on this host unless any_host) reported itself
    running now, or was seen doing so by an earlier call at most `max_age` seconds ago.

    A cluster's Stat lives for 3 seconds after its last refresh; the time it was last seen is kept
    in the cache so that a probe tolerates a short gap (a busy guard loop, a broker hiccup)."""
    from django_q.conf import Conf
    from django_q.status import Stat

    now = time.time() if now is None else now
    host = socket.gethostname()
    key = f"integrations:cluster-seen:{'*' if any_host else host}"
    cache = caches["default"]
    running = [
        s
        for s in Stat.get_all()
        if (any_host or s.host == host) and s.status in (Conf.STARTING, Conf.IDLE, Conf.WORKING)
    ]
    if running:
        cache.set(key, now, None)
        names = ", ".join(sorted(f"{s.cluster_id} on {s.host} ({s.status})" for s in running))
        return True, f"running: {names}"
    seen = cache.get(key)
    if seen is not None and now - float(seen) <= max_age:
        return True, f"last seen {now - float(seen):.0f} s ago"
    where = "anywhere" if any_host else f"on {host}"
    return False, f"no django-q2 cluster seen running {where} in the last {max_age} s"
