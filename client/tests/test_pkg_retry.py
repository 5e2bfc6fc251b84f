"""Backoff with jitter and Retry-After."""

import email.utils

from integrations_client.retry import RetryPolicy, parse_retry_after


def test_backoff_grows_exponentially_within_jitter_bounds():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for retry, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (9, 8)]:
        delays = {policy.backoff(retry) for _ in range(200)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_retry_after_is_a_floor():
    policy = RetryPolicy(base_delay=0.1, max_delay=0.2)
    assert policy.delay(1, retry_after=3) == 3
    assert policy.delay(1) <= 0.2


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_800_000_000
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
