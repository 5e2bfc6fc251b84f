"""The client of the batch API (SPEC section 4): one `sync()` call, and the calls it is made of.

    client = Client("https://integrations.example.com", api_key)
    report = client.sync("products", records)          # any iterable of dicts, streamed
    print(report.status, report.counts)

A Client holds one HTTP session (connection reuse); use one per thread.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urljoin

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from . import __version__
from .encoding import BatchEncoder, EncodedBatch, Unparseable
from .errors import ApiError, ConflictError, TransportError, ValidationError, WaitTimeout, error_class
from .multipart import MultipartFile
from .pipeline import BatchSender
from .report import SETTLED_STATES, Report
from .retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

MAX_BATCH_RECORDS = 50_000
# Records are read and encoded this many at a time at most (one msgspec call for a JSON chunk);
# fewer while a batch's first records show how wide they are, so that a chunk of wide records
# cannot carry a batch far past max_batch_bytes.
CHUNK_RECORDS = 1_000
_NOTHING = object()
# A batch is closed early when its records reach this size before compression: well under the
# server's INTEGRATIONS_MAX_BATCH_BYTES (64 MiB by default), so wide records never make a 413.
MAX_BATCH_BYTES = 32 * 1024 * 1024
# A batch answer is quick (the server stores the bytes); `complete` only queues the run.
DEFAULT_TIMEOUT = (10.0, 120.0)

# How long one GET runs/{id}/?wait=N may wait on the server (at most 60); well under the read timeout
# of proxies in front of it (often 60 s), and a lost connection costs at most this much.
LONG_POLL = 25.0

# Called after each batch is accepted: (the batch answer, records sent so far).
Progress = Callable[[dict[str, Any], int], None]


def _chunk_size(encoder: BatchEncoder, batch_size: int, max_bytes: int) -> int:
    """How many records to read next into `encoder`'s batch: at most what the batch has room for,
    by count and (at the size of its records so far, with half the room to spare) by bytes."""
    room = batch_size - encoder.count
    if encoder.count == 0:
        return min(room, 16)
    width = encoder.size / encoder.count
    return max(1, min(room, CHUNK_RECORDS, int((max_bytes - encoder.size) / 2 / width)))


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        format: str = "protobuf",
        compress: bool = True,
        session: requests.Session | None = None,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ):
        """`base_url` is the server's root (e.g. http://127.0.0.1:8000); the API is under /api/v1/.
        `format` is how batches travel: "protobuf" (default) or "json"; `compress` gzips them."""
        if not api_key:
            raise ValueError("an API key is required")
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + "/api/v1/"
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.format = format
        self.compress = compress
        self.max_batch_bytes = max_batch_bytes
        self._stop: threading.Event | None = None  # set while a sync's batches are being posted
        BatchEncoder(format)  # refuse an unknown format now, not at the first batch
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"integrations-client/{__version__} python-requests/{requests.__version__}",
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # --- transport -----------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return urljoin(self.api_url, path)

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        timeout=None,
        rewind: Callable[[], None] | None = None,
        **kwargs,
    ) -> requests.Response:
        """One API call, retried on connection errors, 429 and 5xx; any other error status raises.

        `idempotent` False (an upload) retries only what the server surely did not act on: a
        connection that was never made, a 429 or a 503. `rewind` is called before every retry
        (to seek a streamed body back to its start)."""
        url = path if path.startswith(("http://", "https://")) else self._url(path)
        retries = 0
        while True:
            try:
                response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if (
                    retries >= self.retry.max_retries
                    or not (idempotent or _never_sent(exc))
                    or not self._pause(self.retry.delay(retries + 1))
                ):
                    raise TransportError(f"{method} {url} failed after {retries + 1} attempt(s): {exc}") from exc
                retries += 1
                if rewind:
                    rewind()
                continue
            if response.status_code < 400:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            retryable = response.status_code in RETRY_STATUSES and (idempotent or response.status_code in (429, 503))
            error = _api_error(response, method, url, retry_after)
            if (
                retryable
                and retries < self.retry.max_retries
                and (retry_after is None or retry_after <= self.retry.max_retry_after)
            ):
                response.close()
                if self._pause(self.retry.delay(retries + 1, retry_after)):
                    retries += 1
                    if rewind:
                        rewind()
                    continue
            raise error

    def _pause(self, seconds: float) -> bool:
        """Sleep before a retry; False (at once) if the sync this request belongs to is being stopped."""
        stop = self._stop
        if stop is None:
            time.sleep(seconds)
            return True
        return not stop.wait(seconds)

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code,
                "bad_response",
                f"the server answered {response.status_code} with a body that is not JSON: {response.text[:200]!r}",
                method=method,
                url=response.url,
            ) from None

    # --- the calls of the API ------------------------------------------------------------------
    def list_integrations(self) -> list[dict[str, Any]]:
        return list(self._pages("integrations/"))

    def create_run(
        self, integration: str, *, mode: str | None = "full", dry_run: bool = False, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Open a run (`receiving`). The Idempotency-Key makes a retried create return the same run."""
        body: dict[str, Any] = {"dry_run": bool(dry_run)}
        if mode is not None:
            body["mode"] = mode
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._json("POST", f"integrations/{_seg(integration)}/runs/", json=body, headers=headers)

    def list_runs(self, integration: str) -> Iterator[dict[str, Any]]:
        """The integration's runs, newest first."""
        return self._pages(f"integrations/{_seg(integration)}/runs/")

    def encode_batch(
        self, records: Iterable[Mapping[str, Any]], *, seq: int, deletes: Iterable[Any] = ()
    ) -> EncodedBatch:
        encoder = BatchEncoder(self.format, compress=self.compress)
        for record in records:
            encoder.add(record)
        return encoder.finish(seq, deletes)

    def post_batch(
        self,
        run_id: str,
        records: Iterable[Mapping[str, Any]] | EncodedBatch,
        *,
        seq: int | None = None,
        deletes: Iterable[Any] = (),
    ) -> dict[str, Any]:
        """Post one batch (records, or a batch encoded before); a retry re-posts the very same bytes.

        Answers {"seq", "received", "status": "received"}."""
        if isinstance(records, EncodedBatch):
            batch = records
        else:
            if seq is None:
                raise TypeError("post_batch needs the batch's seq (1, 2, ...)")
            batch = self.encode_batch(records, seq=seq, deletes=deletes)
        return self._json("POST", f"runs/{_seg(run_id)}/batches/", data=batch.body, headers=batch.headers)

    def complete(self, run_id: str, *, batches: int | None = None, records: int | None = None) -> dict[str, Any]:
        """Close the run to batches and queue it. With counts, the server checks it got them all (409 if not)."""
        body = {k: v for k, v in (("batches", batches), ("records", records)) if v is not None}
        return self._json("POST", f"runs/{_seg(run_id)}/complete/", json=body)

    def get_run(self, run_id: str, *, wait: float | None = None) -> dict[str, Any]:
        """The run object. With `wait` (seconds, at most 60) a long-poll: the server answers as soon as
        the run's status or progress changes, or after `wait` seconds (a server that does not know
        the parameter answers at once)."""
        if not wait:
            return self._json("GET", f"runs/{_seg(run_id)}/")
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        return self._json(
            "GET", f"runs/{_seg(run_id)}/", params={"wait": _seconds(wait)}, timeout=(connect, read + wait)
        )

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run not yet applied (409 ConflictError once it is). Cancelling a cancelled run
        returns it, so a cancel retried after a lost answer does not fail."""
        try:
            return self._json("POST", f"runs/{_seg(run_id)}/cancel/")
        except ConflictError as exc:
            if exc.details.get("status") == "cancelled":
                return self.get_run(run_id)
            raise

    def iter_errors(self, run_id: str, *, code: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record error of a run, fetched page by page as you iterate."""
        params = {"page_size": 500, **({"code": code} if code else {})}
        return self._pages(f"runs/{_seg(run_id)}/errors/", params=params)

    def errors_csv(
        self, run_id: str, out: str | os.PathLike | IO[bytes] | None = None, *, code: str | None = None
    ) -> bytes | None:
        """The run's record errors as CSV (the target's fields, then error_code, error_message,
        error_fields, error_seq, error_index: fix the cells and send the file again as it is).

        `out` omitted: returns the CSV as bytes (held in memory). A path: streams it into that file;
        a binary file object: streams it into it; both return None. `code` keeps one error code."""
        if isinstance(out, (str, os.PathLike)):
            with open(out, "wb") as fp:
                return self.errors_csv(run_id, fp, code=code)
        params = {"format": "csv", **({"code": code} if code else {})}
        response = self.request(
            "GET", f"runs/{_seg(run_id)}/errors/", params=params, stream=True, headers={"Accept": "text/csv"}
        )
        with response:
            if out is None:
                return response.content
            for chunk in response.iter_content(64 * 1024):
                out.write(chunk)
        return None

    def upload_file(
        self,
        integration: str,
        file: str | os.PathLike | IO[bytes],
        *,
        format: str | None = None,
        mode: str | None = None,
        dry_run: bool = False,
        wait: bool = False,
        poll_timeout: float = 3600.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> Report:
        """Send a whole file (JSON array, NDJSON or CSV) to POST integrations/{slug}/uploads/.

        The file is streamed from disk, never read into memory; the server splits it into batches,
        types CSV cells by the target's schema, and completes the run itself. An upload has no
        idempotency key, so it is retried only when the server surely did not take it."""
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as fp:
                return self.upload_file(
                    integration,
                    fp,
                    format=format,
                    mode=mode,
                    dry_run=dry_run,
                    wait=wait,
                    poll_timeout=poll_timeout,
                    on_poll=on_poll,
                )
        fields = {k: v for k, v in (("format", format), ("mode", mode)) if v}
        if dry_run:
            fields["dry_run"] = "true"
        filename = os.path.basename(getattr(file, "name", "") or f"upload.{format or 'json'}")
        body = MultipartFile(file, filename=filename, fields=fields)
        run = self._json(
            "POST",
            f"integrations/{_seg(integration)}/uploads/",
            data=body,
            headers=body.headers,
            idempotent=False,
            rewind=body.rewind,
        )
        if wait:
            return self.wait(run["id"], timeout=poll_timeout, on_poll=on_poll)
        return self._report(run)

    # --- waiting -------------------------------------------------------------------------------
    def wait(
        self,
        run_id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 0.5,
        max_interval: float = 5.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        long_poll: float = LONG_POLL,
    ) -> Report:
        """Follow the run until an end state or needs_review; WaitTimeout after `timeout` seconds.

        Long-polls (GET runs/{id}/?wait=`long_poll`): the server answers as soon as the status or
        the progress changes, so the end is seen within a fraction of a second. A server that
        ignores (or refuses) the parameter is polled with a back-off from `interval` to
        `max_interval` seconds instead. `on_poll(run)` is called with every run object received:
        the status and `progress` {"batches_total", "batches_done"} for a progress display."""
        deadline = time.monotonic() + timeout
        last: tuple | None = None
        while True:
            left = deadline - time.monotonic()
            asked = min(long_poll, left) if long_poll and left >= 1 else 0
            started = time.monotonic()
            try:
                run = self.get_run(run_id, wait=asked)
            except ValidationError as exc:
                if not asked or "wait" not in exc.details:
                    raise
                long_poll = 0  # a server that knows no long-poll but refuses unknown parameters
                continue
            if on_poll:
                on_poll(run)
            if run.get("status") in SETTLED_STATES:
                return self._report(run)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(run_id, timeout, run)
            seen = _watched(run)
            # a quick answer that changed nothing: the server did not wait (it has no long-poll)
            if not asked or (seen == last and time.monotonic() - started < asked / 2):
                time.sleep(min(interval, left))
                interval = min(max_interval, interval * 1.5)
            last = seen

    # --- one call ------------------------------------------------------------------------------
    def sync(
        self,
        integration: str,
        records: Iterable[Mapping[str, Any] | Unparseable],
        *,
        mode: str | None = "full",
        batch_size: int = MAX_BATCH_RECORDS,
        wait: bool = True,
        dry_run: bool = False,
        deletes: Iterable[Any] = (),
        poll_timeout: float = 3600.0,
        progress: Progress | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> Report:
        """Create a run, stream `records` into batches of `batch_size`, complete, and (wait=True) wait.

        `records` is consumed lazily, in the caller's thread: while one batch is posted (by a
        thread of the client's own, in seq order, each answered before the next is posted) the
        next is read and encoded, so at most two batches are held. `deletes` (keys to delete
        explicitly) ride along in batches of the same size. If a batch cannot be delivered, or
        `records` raises (Ctrl-C included), the posting stops, the run is cancelled (best effort)
        and the original error raised, so no half-sent run is left open. An `Unparseable` among
        the records (a line that was not JSON) is sent so that the server records it as a
        parse_error of the run. `progress(answer, sent)` follows the batches, in order and in the
        caller's thread; `on_poll(run)` the wait. Returns the Report of the run (queued when
        wait=False)."""
        if not 1 <= batch_size <= MAX_BATCH_RECORDS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_RECORDS}")
        run = self.create_run(integration, mode=mode, dry_run=dry_run)
        run_id = run["id"]
        sent = batches = 0
        # Batch k is posted (by the sender's thread, the only one on the session meanwhile) while
        # this thread reads and encodes batch k+1; `progress` is called here, in seq order.
        sender = BatchSender(lambda batch: self.post_batch(run_id, batch))
        self._stop = sender.stop_event
        try:
            try:
                encoded = self.iter_batches(records, batch_size=batch_size, deletes=deletes)
                while True:
                    sender.reserve()
                    sent = self._progress(sender, progress, sent)
                    batch = next(encoded, None)
                    if batch is None:
                        sender.release()
                        break
                    sender.put(batch)
                    del batch
                    batches += 1
                    sent = self._progress(sender, progress, sent)
                sender.finish()
                sent = self._progress(sender, progress, sent)
            finally:
                if sender.running:
                    sender.stop()
                self._stop = None
            run = self.complete(run_id, batches=batches, records=sent)
        except BaseException:
            self._cancel_quietly(run_id)
            raise
        if wait:
            return self.wait(run_id, timeout=poll_timeout, on_poll=on_poll)
        return self._report(run)

    def iter_batches(
        self,
        records: Iterable[Mapping[str, Any] | Unparseable],
        *,
        batch_size: int = MAX_BATCH_RECORDS,
        deletes: Iterable[Any] = (),
    ) -> Iterator[EncodedBatch]:
        """Encoded batches (seq 1, 2, ...) of `records`, read lazily: at most `batch_size` records,
        or fewer once they reach `max_batch_bytes`. Explicit deletes ride along, `batch_size` keys
        per batch (the last may come in batches of their own). An empty input still makes one
        empty batch: an empty snapshot.

        An `Unparseable` record (a line that is not JSON) can only travel in a JSON batch: in
        protobuf, the batch before it is closed early and the one that starts with it goes as JSON
        (every later batch is protobuf again), so bad lines at most double the number of batches."""
        rows = iter(records)
        keys = iter(deletes)
        exhausted = False
        pending: Any = _NOTHING  # a record read but not yet added (it waits for a JSON batch)
        seq = 0
        while True:
            fmt = "json" if isinstance(pending, Unparseable) else self.format
            encoder = BatchEncoder(fmt, compress=self.compress)
            while not exhausted and encoder.count < batch_size and encoder.size < self.max_batch_bytes:
                if pending is not _NOTHING:
                    record, pending = pending, _NOTHING
                    encoder.add(record)
                    continue
                # records are read (and encoded) a chunk at a time, never past the batch's end
                wanted = _chunk_size(encoder, batch_size, self.max_batch_bytes)
                chunk = list(itertools.islice(rows, wanted))
                exhausted = len(chunk) < wanted
                bad = None  # the first Unparseable record: it cannot travel in protobuf
                if fmt != "json" and Unparseable in set(map(type, chunk)):
                    bad = next(i for i, r in enumerate(chunk) if isinstance(r, Unparseable))
                added = encoder.add_many(chunk if bad is None else chunk[:bad], self.max_batch_bytes)
                if added < len(chunk):  # what was not added is read again, first, for what comes next
                    rows, exhausted = itertools.chain(chunk[added:], rows), False
                if bad is not None and added == bad:  # the batch closes before it; the next starts with it
                    pending = next(rows)
                if bad is not None:
                    break
            if encoder.count == 0 and pending is not _NOTHING:
                continue  # the batch starts with the pending record, as JSON
            chunk = list(itertools.islice(keys, batch_size))
            if seq > 0 and encoder.count == 0 and not chunk:
                return
            seq += 1
            yield encoder.finish(seq, chunk)
            if exhausted and len(chunk) < batch_size:
                return

    @staticmethod
    def _progress(sender: BatchSender, progress: Progress | None, sent: int) -> int:
        """Report the batches answered since the last call; the records sent so far."""
        for answer, records in sender.answers():
            sent += records
            if progress:
                progress(answer, sent)
        return sent

    def _cancel_quietly(self, run_id: str) -> None:
        previous, self.retry = self.retry, RetryPolicy(max_retries=1, base_delay=0.2)
        try:
            self.cancel(run_id)
        except Exception:  # the run expires on the server after INTEGRATIONS_RECEIVING_TIMEOUT anyway
            pass
        finally:
            self.retry = previous

    # --- helpers -------------------------------------------------------------------------------
    def _report(self, run: dict[str, Any]) -> Report:
        return Report(run, self.iter_errors)

    def _pages(self, path: str, params: dict | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        while url:
            page = self._json("GET", url, params=params)
            if isinstance(page, list):  # an unpaginated list
                yield from page
                return
            yield from page.get("results", [])
            url = page.get("next")
            params = None  # `next` carries the query


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _watched(run: dict[str, Any]) -> tuple:
    """What the server's long-poll watches: a change of it ends a wait early."""
    progress = run.get("progress") or {}
    counts = run.get("counts") or {}
    return (
        run.get("status"),
        progress.get("batches_done"),
        progress.get("batches_total"),
        counts.get("received"),
        counts.get("failed"),
    )


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _never_sent(exc: Exception) -> bool:
    """True when the request surely did not reach the server (the connection was never made)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def _api_error(response: requests.Response, method: str, url: str, retry_after: float | None) -> ApiError:
    code, message, details = f"http_{response.status_code}", response.reason or "error", {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details") or {}
    elif isinstance(body, dict) and "detail" in body:  # a plain DRF error
        message = str(body["detail"])
    elif response.text:
        message = f"{message}: {response.text[:200]}"
    return error_class(response.status_code)(
        response.status_code, code, message, details, method=method, url=url, retry_after=retry_after
    )
