"""shared.retry: when a finished attempt is retried and after how long."""

from __future__ import annotations

import random

import pytest

from shared.enums import Backoff, ExecutionStatus, RetryOn
from shared.models import RetryPolicy
from shared.retry import next_delay_s

FAILED = ExecutionStatus.FAILED
TIMEOUT = ExecutionStatus.TIMEOUT


class Fixed(random.Random):
    """A Random whose random() is always the same value, for exact jitter checks."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


NO_JITTER = Fixed(0.0)


def policy(**kw: object) -> RetryPolicy:
    base: dict[str, object] = {"count": 5, "delay_s": 10.0, "jitter": 0.0}
    base.update(kw)
    return RetryPolicy(**base)  # type: ignore[arg-type]


def test_fixed_backoff_waits_the_same_delay_every_time() -> None:
    """Fixed backoff gives delay_s for every retry."""
    p = policy(backoff=Backoff.FIXED)
    assert [next_delay_s(p, i, FAILED, NO_JITTER) for i in range(3)] == [10.0, 10.0, 10.0]


def test_exponential_backoff_doubles_from_delay() -> None:
    """Exponential backoff gives delay_s * 2**retry_index: 10, 20, 40, 80."""
    p = policy(backoff=Backoff.EXPONENTIAL)
    assert [next_delay_s(p, i, FAILED, NO_JITTER) for i in range(4)] == [10.0, 20.0, 40.0, 80.0]


def test_exponential_backoff_is_capped_by_max_delay() -> None:
    """The exponential delay never exceeds max_delay_s before jitter."""
    p = policy(backoff=Backoff.EXPONENTIAL, max_delay_s=30.0)
    assert [next_delay_s(p, i, FAILED, NO_JITTER) for i in range(4)] == [10.0, 20.0, 30.0, 30.0]


def test_huge_retry_index_stays_finite() -> None:
    """A large retry_index does not overflow: the cap applies."""
    p = policy(count=10_000, backoff=Backoff.EXPONENTIAL, delay_s=1.0, max_delay_s=60.0)
    assert next_delay_s(p, 5000, FAILED, NO_JITTER) == 60.0


def test_jitter_adds_up_to_its_fraction_of_the_delay() -> None:
    """Jitter adds jitter * delay * rng.random() on top of the capped delay."""
    p = policy(jitter=0.5, backoff=Backoff.EXPONENTIAL, max_delay_s=15.0)
    assert next_delay_s(p, 0, FAILED, Fixed(0.5)) == 12.5
    assert next_delay_s(p, 3, FAILED, Fixed(1.0)) == 22.5


def test_jitter_spreads_over_the_whole_range() -> None:
    """With a real RNG every delay lies in [delay, delay * (1 + jitter)]."""
    p = policy(jitter=0.2)
    rng = random.Random(42)
    delays = [next_delay_s(p, 0, FAILED, rng) for _ in range(200)]
    assert all(d is not None and 10.0 <= d <= 12.0 for d in delays)
    assert len(set(delays)) == 200


def test_count_exhausted_means_no_retry() -> None:
    """After count retries (retry_index == count) no retry is due."""
    p = policy(count=2)
    assert next_delay_s(p, 1, FAILED, NO_JITTER) == 10.0
    assert next_delay_s(p, 2, FAILED, NO_JITTER) is None


def test_count_zero_never_retries() -> None:
    """The default policy (count 0) never retries."""
    assert next_delay_s(RetryPolicy(), 0, FAILED, NO_JITTER) is None


def test_only_statuses_in_on_are_retried() -> None:
    """A policy on 'timeout' only does not retry a plain failure."""
    p = policy(on=(RetryOn.TIMEOUT,))
    assert next_delay_s(p, 0, TIMEOUT, NO_JITTER) == 10.0
    assert next_delay_s(p, 0, FAILED, NO_JITTER) is None


@pytest.mark.parametrize(
    "status",
    [
        ExecutionStatus.SUCCESS,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.LOST,
    ],
)
def test_non_failures_are_never_retried(status: ExecutionStatus) -> None:
    """Success, cancel, skip and lost (may have run) are never retried."""
    assert next_delay_s(policy(), 0, status, NO_JITTER) is None


def test_negative_retry_index_is_our_misuse() -> None:
    """A negative retry_index raises ValueError."""
    with pytest.raises(ValueError, match="retry_index"):
        next_delay_s(policy(), -1, FAILED, NO_JITTER)
