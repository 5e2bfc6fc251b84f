"""Progress bars of `integrations-sync` (tqdm), fed by `Client.sync(progress=...)` and `on_poll`.

Two bars on standard error: records sent (their total is unknown: the file is streamed, never
counted first), then the server's work, batches validated of all, with the run's status.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


class ProgressBars:
    def __init__(self, *, enabled: bool = True):
        self.enabled = enabled
        self._sending: tqdm | None = None
        self._processing: tqdm | None = None

    def sent(self, answer: dict[str, Any], total_sent: int) -> None:
        """`Client.sync(progress=...)`: a batch was accepted; `total_sent` records so far."""
        if self._sending is None:
            self._sending = tqdm(desc="sending", unit=" records", disable=not self.enabled, dynamic_ncols=True)
        self._sending.update(total_sent - self._sending.n)

    def polled(self, run: dict[str, Any]) -> None:
        """`on_poll`: the run as the server answered it while we wait."""
        if self._sending is not None:
            self._sending.close()
        progress = run.get("progress") or {}
        total, done = progress.get("batches_total") or 0, progress.get("batches_done") or 0
        if self._processing is None:
            self._processing = tqdm(
                desc="processing", unit=" batches", total=total or None, disable=not self.enabled, dynamic_ncols=True
            )
        bar = self._processing
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        bar.set_postfix_str(str(run.get("status") or ""), refresh=True)

    def close(self) -> None:
        for bar in (self._sending, self._processing):
            if bar is not None:
                bar.close()
