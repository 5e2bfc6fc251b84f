"""When and how long to wait before trying a request again."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

# Statuses that say "not now" rather than "no": retried with backoff. Other 4xx are final.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Before retry n (1, 2, ...) the client sleeps a random time between half and all of
    `min(max_delay, base_delay * 2 ** (n - 1))`, or what the server's Retry-After asks if that is
    longer. A Retry-After above `max_retry_after` is not waited for: the error is raised at once.
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, retry: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(retry - 1, 0)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        delay = self.backoff(retry)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)
