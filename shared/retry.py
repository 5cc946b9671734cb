"""Retry arithmetic: whether a finished attempt is retried, and after how long.

The executor calls ``next_delay_s`` when an execution reaches a final status.
``None`` means the run is over; a number means "create a new execution with
the same run id, ``retry_index + 1`` and trigger ``retry``, due that many
seconds from now". Randomness is passed in so tests are exact.

Delay for the attempt that just ended, ``retry_index`` (0 = the first run)::

    fixed:        delay_s
    exponential:  delay_s * 2 ** retry_index
    then:         min(that, max_delay_s) * (1 + jitter * rng.random())

so the first retry waits ``delay_s`` in both modes, and jitter spreads a
fleet's retries over up to ``jitter`` of the delay (it may exceed the cap by
that fraction). ``lost`` executions are never retried: the job may have run,
and nothing may run twice. Policies are validated where jobs enter
(``shared.jobs.parse_job``); out-of-range values here are clamped, not trusted.
"""

from __future__ import annotations

import random

from shared.enums import Backoff, ExecutionStatus, RetryOn
from shared.models import RetryPolicy

__all__ = ["next_delay_s"]

# 2**60 seconds outlives everything; clamping keeps the float finite for any index.
_MAX_EXPONENT = 60

_RETRYABLE = {
    ExecutionStatus.FAILED: RetryOn.FAILED,
    ExecutionStatus.TIMEOUT: RetryOn.TIMEOUT,
}


def next_delay_s(
    policy: RetryPolicy, retry_index: int, status: ExecutionStatus, rng: random.Random
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` if no retry is due.

    ``retry_index`` is the index of the attempt that just ended (0 = first
    run); a retry is due when ``status`` is one the policy retries on and
    fewer than ``policy.count`` retries have been made.
    """
    if retry_index < 0:
        raise ValueError(f"retry_index must be >= 0, got {retry_index}")
    reason = _RETRYABLE.get(status)
    if reason is None or reason not in policy.on:
        return None
    if retry_index >= policy.count:
        return None
    delay = max(policy.delay_s, 0.0)
    if policy.backoff is Backoff.EXPONENTIAL:
        delay *= 2.0 ** min(retry_index, _MAX_EXPONENT)
    delay = min(delay, max(policy.max_delay_s, 0.0))
    jitter = min(max(policy.jitter, 0.0), 1.0)
    return delay * (1.0 + jitter * rng.random())
