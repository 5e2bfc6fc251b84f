"""Posting a run's batches from a thread of their own while the caller's thread encodes the next one.

Encoding (Python, CPU) and posting (the server's work, the network) take turns in a plain loop; on
a machine the client shares with the server, each waits for the other. `BatchSender` overlaps them
and changes nothing else: batches are posted in order by one thread (batch k is answered before
k+1 is posted, with the client's retries), and the answers come back in that order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .encoding import EncodedBatch

# Batches alive at once: one posted (or retried) while the next is encoded or waits its turn.
SLOTS = 2


class BatchSender:
    """Posts encoded batches in order from one thread, the only one to use the client's session
    while it runs.

    The caller's thread reads the records and encodes them: `reserve()` before it starts a batch
    waits until fewer than `slots` batches are alive (being encoded, waiting or being posted), so
    the client holds at most two batches; `put(batch)` hands the batch over; `answers()` takes the
    answers received so far, in order; `finish()` waits for the last answer. `stop()` ends the
    thread early: the post under way is not interrupted, but no retry and no other post begins;
    `stop` is an Event the client's retry loop waits on instead of sleeping.

    The first error of a post is kept and raised, the very exception, by the caller's next call of
    `reserve()` or `finish()`; nothing is posted after it."""

    def __init__(
        self,
        post: Callable[[EncodedBatch], dict[str, Any]],
        *,
        slots: int = SLOTS,
        name: str = "integrations-client-sender",
    ):
        self._post = post
        self._slots = slots
        self._cond = threading.Condition()
        self._queue: deque[EncodedBatch] = deque()
        self._answers: deque[tuple[dict[str, Any], int]] = deque()
        self._alive = 0
        self._closed = False
        self._error: BaseException | None = None
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- the caller's side ------------------------------------------------------------------------
    def reserve(self) -> None:
        """Wait for room for one more batch (raises the sender's error if a post failed)."""
        with self._cond:
            while self._error is None and self._alive >= self._slots:
                self._cond.wait()
            self._raise_error()
            self._alive += 1

    def release(self) -> None:
        """Give back a slot reserved for a batch that was not made (the records ended)."""
        with self._cond:
            self._alive -= 1
            self._cond.notify_all()

    def put(self, batch: EncodedBatch) -> None:
        with self._cond:
            self._raise_error()
            self._queue.append(batch)
            self._cond.notify_all()

    def answers(self) -> list[tuple[dict[str, Any], int]]:
        """(answer, records of the batch) of each batch answered since the last call, in order."""
        with self._cond:
            taken = list(self._answers)
            self._answers.clear()
            return taken

    def finish(self) -> None:
        """Wait until every batch put is answered, and for the thread to end; raises the sender's error."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._error is None and self._alive > 0:
                self._cond.wait()
            self._raise_error()
        self._thread.join()

    def stop(self) -> None:
        """End the thread: drop what waits, start no post or retry, and wait for the post under way."""
        self.stop_event.set()
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # --- the sender thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue or self.stop_event.is_set():
                    return
                batch = self._queue.popleft()
            try:
                answer = self._post(batch)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                with self._cond:
                    self._error = exc
                    self._queue.clear()
                    self._cond.notify_all()
                return
            records = batch.records
            del batch  # the bytes go before the slot is given back: at most `slots` batches alive
            with self._cond:
                self._answers.append((answer, records))
                self._alive -= 1
                self._cond.notify_all()
