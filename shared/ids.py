"""Sortable ids. Time and randomness are passed in, so tests are exact.

Ids are ULIDs (26 Crockford base32 characters: 48 bits of milliseconds, 80
bits of randomness), so sorting by id sorts by creation time. A scheduled
execution's id is derived from (job, scheduled_for) alone: the same tick always
gets the same id, which is what makes "no tick runs twice" a primary-key fact.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["idempotency_key", "new_execution_id", "new_run_id", "scheduled_execution_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(ms: int, rand80: int) -> str:
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"time {ms} ms is outside the ULID range")
    value = (ms << 80) | (rand80 & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_execution_id(*, now: float, rng: random.Random) -> str:
    """A fresh id for a manual, retry or dispatched execution created at ``now`` (epoch s)."""
    return _ulid(int(now * 1000), rng.getrandbits(80))


new_run_id = new_execution_id


def scheduled_execution_id(job: str, scheduled_for: float) -> str:
    """The one id of ``job``'s tick at ``scheduled_for``: deterministic, so a tick is unique."""
    digest = hashlib.sha256(f"{job}\0{scheduled_for:.3f}".encode()).digest()
    return _ulid(int(scheduled_for * 1000), int.from_bytes(digest[:10], "big"))


def idempotency_key(*parts: str) -> str:
    """A stable key for work sent to a peer: the same parts always give the same key."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
