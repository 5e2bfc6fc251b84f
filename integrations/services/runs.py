"""The life of a run as its sender drives it: create, receive batches, complete, cancel, upload;
and as staff decide it: review, retry. Processing itself is in processing.py; every change of a
run's status, with its guard and the tasks that follow, is in transitions.py."""

import hashlib
import logging
import time
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import metrics, storage
from ..conf import conf
from ..exceptions import Conflict, IdempotencyMismatch, InvalidInput, TooLarge
from ..formats import MediaType
from ..ingest import files, transport
from ..models import IdempotencyKey, Integration, Mode, SyncBatch, SyncRun
from ..targets import get_target
from . import transitions
from .early import validate_early
from .transitions import require_active

log = logging.getLogger("integrations")
Status = SyncRun.Status


def run_create(
    *,
    integration: Integration,
    mode: str | None = None,
    dry_run: bool = False,
    source: str = SyncRun.Source.API,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> tuple[SyncRun, bool]:
    """Open a run (`receiving`). With an idempotency key seen within 24 hours for this customer,
    return that run instead (created False), or refuse when the request differs."""
    require_active(integration)
    mode = mode or integration.default_mode
    if mode not in Mode.values:
        raise InvalidInput(f"mode must be one of {', '.join(Mode.values)}", details={"mode": mode})
    if not idempotency_key:
        return SyncRun.objects.create(integration=integration, mode=mode, dry_run=bool(dry_run), source=source), True
    body_hash = hashlib.sha256(f"{integration.pk}|{mode}|{bool(dry_run)}|{fingerprint}".encode()).hexdigest()
    # The key is unique per customer in the database (IdempotencyKey). Concurrent requests with one
    # key: one inserts the claim, the others wait on the unique index, fail, and read its run.
    for _ in range(3):
        try:
            with transaction.atomic():
                # (its run is read after the lock: a request that waited here sees the run that
                # the request before it put in an expired claim)
                claim = (
                    IdempotencyKey.objects.select_for_update()
                    .filter(customer_id=integration.customer_id, key=idempotency_key)
                    .first()
                )
                since = timezone.now() - timedelta(hours=conf.IDEMPOTENCY_HOURS)
                if claim is not None and claim.run.created_at >= since:
                    return _same_request(claim.run, body_hash), False
                run = SyncRun.objects.create(
                    integration=integration,
                    mode=mode,
                    dry_run=bool(dry_run),
                    source=source,
                    idempotency_key=idempotency_key,
                    idempotency_hash=body_hash,
                )
                if claim is not None:  # the key's window has passed: it opens a new run
                    claim.run = run
                    claim.save(update_fields=["run"])
                else:
                    IdempotencyKey.objects.create(customer_id=integration.customer_id, key=idempotency_key, run=run)
            return run, True
        except IntegrityError:
            continue  # another request claimed the key first (its transaction committed): read its run
    raise Conflict(
        "this Idempotency-Key is being used by concurrent requests; try again",
        details={"idempotency_key": idempotency_key},
    )


def _same_request(previous: SyncRun, body_hash: str) -> SyncRun:
    if previous.idempotency_hash != body_hash:
        raise IdempotencyMismatch(
            "this Idempotency-Key was used with another request; use a new key for a new run",
            details={"run": str(previous.pk)},
        )
    return previous


def batch_receive(
    *, run: SyncRun, seq: int | None, body: bytes, content_type: str, content_encoding: str = ""
) -> tuple[SyncBatch, bool]:
    """Accept one batch: check its envelope, store its raw bytes, then record it.

    Returns (batch, created). The same seq with the same bytes again returns the first batch;
    other bytes under a seq already taken, or a run no longer receiving, is a Conflict."""
    if run.status != Status.RECEIVING:
        raise Conflict(f"run is {run.status}, not receiving batches", details={"status": run.status})
    require_active(run.integration)
    began = time.perf_counter()
    plain = transport.decompress(body, content_encoding, conf.MAX_BATCH_BYTES)
    summary = transport.summarize_batch(plain, content_type)
    transport.check_deletes(summary.deletes, get_target(run.integration.target).parse_key)
    if summary.received > conf.MAX_BATCH_RECORDS:
        raise TooLarge(
            f"batch has {summary.received} records, above the limit of {conf.MAX_BATCH_RECORDS}",
            details={"records": summary.received, "limit": conf.MAX_BATCH_RECORDS},
        )
    seq = seq if seq is not None else summary.seq
    if seq is None or not isinstance(seq, int) or not 1 <= seq <= 2_147_483_647:  # the column's range
        raise InvalidInput("a batch needs `seq`, an integer from 1 to 2147483647", details={"seq": "required"})
    if summary.seq is not None and summary.seq != seq:
        raise InvalidInput(f"seq {summary.seq} of the body differs from seq {seq} of the request")
    sha = hashlib.sha256(body).hexdigest()

    existing = SyncBatch.objects.filter(run=run, seq=seq).first()
    if existing is not None:
        return _same_batch(existing, sha)
    ext = "pb" if content_type == MediaType.PROTOBUF else "json"
    name = storage.save_bytes(
        storage.payload_name(run.pk, f"batch-{seq:06d}-{sha[:12]}", ext + (".gz" if content_encoding else "")), body
    )
    try:
        with transaction.atomic():
            locked = SyncRun.objects.select_for_update().get(pk=run.pk)
            if locked.status != Status.RECEIVING:
                raise Conflict(f"run is {locked.status}, not receiving batches", details={"status": locked.status})
            batch = SyncBatch.objects.create(
                run=locked,
                seq=seq,
                payload=name,
                content_type=content_type,
                content_encoding=content_encoding or "",
                sha256=sha,
                size=len(body),
                received=summary.received,
                deletes=len(summary.deletes),
            )
    except IntegrityError:
        storage.delete_payload(name)
        return _same_batch(SyncBatch.objects.get(run=run, seq=seq), sha)
    except Conflict:
        storage.delete_payload(name)
        raise
    metrics.batch_accepted(seconds=time.perf_counter() - began, records=summary.received)
    validate_early(customer_id=run.integration.customer_id)  # validated while the sender sends the rest
    return batch, True


def _same_batch(existing: SyncBatch, sha: str) -> tuple[SyncBatch, bool]:
    if existing.sha256 != sha:
        raise Conflict(f"batch {existing.seq} was already received with other content", details={"seq": existing.seq})
    return existing, False


def run_complete(
    *, run: SyncRun, expected_batches: int | None = None, expected_records: int | None = None
) -> tuple[SyncRun, bool]:
    """Close a run to new batches and queue it. (run, changed): completing again changes nothing."""
    with transaction.atomic():
        # the run's row only: without `of`, PostgreSQL locks the joined integration and customer rows
        # too, and completing waited for a whole apply of another integration of the customer
        run = SyncRun.objects.select_for_update(of=("self",)).select_related("integration__customer").get(pk=run.pk)
        if run.status != Status.RECEIVING:
            if run.completed_at is not None:
                return run, False
            raise Conflict(f"run is {run.status} and cannot be completed", details={"status": run.status})
        require_active(run.integration)
        batches = list(SyncBatch.objects.filter(run=run).values_list("seq", "received"))
        n_batches, n_records = len(batches), sum(r for _, r in batches)
        mismatch = {}
        if expected_batches is not None and expected_batches != n_batches:
            mismatch["batches"] = {"expected": expected_batches, "received": n_batches}
        if expected_records is not None and expected_records != n_records:
            mismatch["records"] = {"expected": expected_records, "received": n_records}
        if mismatch:
            raise Conflict("the run did not receive what the integrity check says was sent", details=mismatch)
        transitions.queue(
            run,
            batches_total=n_batches,
            received=n_records,
            expected_batches=expected_batches,
            expected_records=expected_records,
        )
    return run, True


def upload_create(
    *,
    integration: Integration,
    stream,
    filename: str,
    fmt: str | None = None,
    mode: str | None = None,
    dry_run: bool = False,
    source: str = SyncRun.Source.UPLOAD,
) -> SyncRun:
    """A whole file as one run, queued at once; a worker splits it into batches (streamed)."""
    require_active(integration)
    fmt = files.guess_format(filename, fmt)
    mode = mode or integration.default_mode
    if mode not in Mode.values:
        raise InvalidInput(f"mode must be one of {', '.join(Mode.values)}", details={"mode": mode})
    size = getattr(stream, "size", None)
    if size is not None and size > conf.MAX_UPLOAD_BYTES:
        raise TooLarge(f"file is {size} bytes, above the limit of {conf.MAX_UPLOAD_BYTES}")
    run = SyncRun(
        integration=integration,
        mode=mode,
        dry_run=bool(dry_run),
        source=source,
        upload_format=fmt,
        upload_filename=(filename or "")[-255:],
    )
    name = storage.save_stream(storage.payload_name(run.pk, "upload", f"file.{fmt}"), stream)
    with transaction.atomic():
        run.upload_name = name
        run.save()
        transitions.queue(run, batches_total=0, received=0)
    return run


def run_cancel(*, run: SyncRun, reason: str = "cancelled") -> SyncRun:
    """Cancel a run not yet applied (SyncRun.can_cancel), whatever its state: the sender's or staff's call."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run.pk)
        transitions.cancel(run, reason)
    return run


def run_review(*, run: SyncRun, approve: bool, user: str = "") -> SyncRun:
    """Approve (apply with the guard waived, against the table as it is now) or reject a held run."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run.pk)
        if approve:
            transitions.approve(run, user=user)
        else:
            transitions.reject(run, user=user)
    return run


def run_retry(*, run: SyncRun, source: str = SyncRun.Source.ADMIN) -> SyncRun:
    """A new run from the stored batches (or upload) of a failed or cancelled run."""
    if not run.can_retry:
        raise Conflict(f"run is {run.status}; only failed or cancelled runs can be retried")
    require_active(run.integration)
    batches = list(run.batches.all())
    if any(b.payload_purged_at for b in batches):
        raise Conflict("the raw batches of this run have expired; it cannot be retried")
    with transaction.atomic():
        new = SyncRun.objects.create(
            integration=run.integration,
            mode=run.mode,
            dry_run=run.dry_run,
            source=source,
            retry_of=run,
            upload_name=run.upload_name,
            upload_format=run.upload_format,
            upload_filename=run.upload_filename,
        )
        if not run.upload_name:
            SyncBatch.objects.bulk_create(
                SyncBatch(
                    run=new,
                    seq=b.seq,
                    payload=b.payload,
                    content_type=b.content_type,
                    content_encoding=b.content_encoding,
                    sha256=b.sha256,
                    size=b.size,
                    received=b.received,
                    deletes=b.deletes,
                )
                for b in batches
            )
        transitions.queue(
            new,
            batches_total=len(batches) if not run.upload_name else 0,
            received=sum(b.received for b in batches) if not run.upload_name else 0,
        )
    return new
