"""Every INTEGRATIONS_* setting, with its default, in one place (STYLE habit 1).

A value comes from Django settings when set there (tests use override_settings), else the default
below. Read lazily, so overrides apply. The app never reads the environment: a host maps it onto
settings if it wants to (the demo service's project/settings.py does, for every name below). A string
value (from the environment) is parsed to the setting's type: "true"/"1", "a@x,b@y" for lists.
"""

from django.conf import settings

_DEFAULTS = {
    # seconds a run may stay `receiving` before it is cancelled (SPEC rule 9)
    "INTEGRATIONS_RECEIVING_TIMEOUT": (int, 86_400),
    # seconds a run may stay `processing` before staff are alerted (SPEC rule 9)
    "INTEGRATIONS_STUCK_AFTER": (int, 3_600),
    # how often the sweeper of rule 8 runs, in seconds
    "INTEGRATIONS_SWEEP_SECONDS": (int, 60),
    # a processing run with no sign of life for this long is handed to a worker again
    "INTEGRATIONS_REQUEUE_AFTER": (int, 300),
    # how many times the sweeper re-queues a run before failing it
    "INTEGRATIONS_MAX_ATTEMPTS": (int, 5),
    # most records in one batch (SPEC section 4)
    "INTEGRATIONS_MAX_BATCH_RECORDS": (int, 50_000),
    # most bytes of one batch, after decompression
    "INTEGRATIONS_MAX_BATCH_BYTES": (int, 64 * 1024 * 1024),
    # most bytes of one uploaded file
    "INTEGRATIONS_MAX_UPLOAD_BYTES": (int, 1024 * 1024 * 1024),
    # validate and stage a batch as soon as it is stored, while its run is still receiving (the apply
    # still waits for `complete` and the order of rule 6); false: every batch waits for `complete`
    "INTEGRATIONS_EARLY_VALIDATION": (bool, True),
    # most batches of one customer's unfinished runs validating early at once (the rest are validated
    # after `complete`), so that a customer with many open runs cannot take every worker
    "INTEGRATIONS_EARLY_VALIDATION_PER_CUSTOMER": (int, 1),
    # records per batch when an uploaded file is split
    "INTEGRATIONS_UPLOAD_BATCH_RECORDS": (int, 50_000),
    # API rate per key, DRF notation
    "INTEGRATIONS_THROTTLE_RATE": (str, "1200/min"),
    # rate of requests without a valid key (none, bad, revoked, expired) per client address
    "INTEGRATIONS_ANON_THROTTLE_RATE": (str, "60/min"),
    # allow webhook URLs that resolve to private or loopback addresses (tests, development)
    "INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE": (bool, False),
    # seconds one webhook try may take in all (connect, send, the answer's headers), wall clock
    "INTEGRATIONS_WEBHOOK_TIMEOUT": (int, 10),
    # the django-q2 cluster that sends webhooks, so that slow receivers never hold a worker of the
    # runs (docs/DEPLOY.md); empty: the cluster of the runs sends them
    "INTEGRATIONS_WEBHOOK_CLUSTER": (str, ""),
    # staff alerted on failed, needs_review and stuck runs (comma-separated in the environment)
    "INTEGRATIONS_STAFF_EMAILS": (list, []),
    # days raw batch payloads and uploads are kept
    "INTEGRATIONS_RAW_RETENTION_DAYS": (int, 30),
    # days a run's change journal is kept (SPEC 13): after it, the run can no longer be undone
    "INTEGRATIONS_CHANGES_RETENTION_DAYS": (int, 30),
    # days runs, their errors and deliveries are kept
    "INTEGRATIONS_RUN_RETENTION_DAYS": (int, 180),
    # rows deleted per statement by the retention purge
    "INTEGRATIONS_PURGE_CHUNK": (int, 5_000),
    # public root of the service, used in links of e-mails and webhooks
    "INTEGRATIONS_BASE_URL": (str, "http://127.0.0.1:8000"),
    # hours an Idempotency-Key of run creation is remembered
    "INTEGRATIONS_IDEMPOTENCY_HOURS": (int, 24),
    # run tasks in the calling process instead of the queue (tests, `sync_file --wait`)
    "INTEGRATIONS_RUN_TASKS_INLINE": (bool, False),
    # bearer token of GET /metrics; empty: the endpoint answers 404 (SPEC section 14)
    "INTEGRATIONS_METRICS_TOKEN": (str, ""),
    # seconds a completed run may wait in the queue before it counts as behind schedule
    "INTEGRATIONS_BEHIND_AFTER": (int, 900),
    # more runs than this hitting one condition in one sweep: staff get one digest, not one e-mail each
    "INTEGRATIONS_ALERT_DIGEST_AFTER": (int, 3),
    # PostgreSQL's work_mem inside a run's apply (its transaction only): the hash joins of a large run's
    # staged records with the owner's rows fit in memory instead of spilling to disk in batches
    # (1,000,000 products: about 140 MB); empty: the server's setting
    "INTEGRATIONS_APPLY_WORK_MEM": (str, "128MB"),
    # benchmarks only (bench/engine.py measures the journal's cost): no change journal, so no undo
    "INTEGRATIONS_BENCH_NO_JOURNAL": (bool, False),
}


def _parse(kind, raw):
    if kind is bool:
        return str(raw).strip().lower() in {"1", "true", "yes", "on"}
    if kind is list:
        if isinstance(raw, (list, tuple)):
            return list(raw)
        return [part.strip() for part in str(raw).split(",") if part.strip()]
    return kind(raw)


class Conf:
    def __getattr__(self, short: str):
        name = f"INTEGRATIONS_{short}"
        if name not in _DEFAULTS:
            raise AttributeError(f"unknown integrations setting {name}")
        kind, default = _DEFAULTS[name]
        if hasattr(settings, name):
            return _parse(kind, getattr(settings, name))
        return default


conf = Conf()
SETTING_NAMES = tuple(_DEFAULTS)
