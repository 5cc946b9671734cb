"""Execution ids: sortable by time, deterministic for scheduled ticks."""

from __future__ import annotations

import random

from shared.ids import idempotency_key, new_execution_id, scheduled_execution_id


def test_ids_sort_by_time() -> None:
    """An id made later sorts after one made earlier, whatever the randomness."""
    rng = random.Random(7)
    ids = [new_execution_id(now=1_700_000_000 + i * 0.001, rng=rng) for i in range(200)]
    assert ids == sorted(ids)
    assert all(len(i) == 26 for i in ids)


def test_scheduled_id_is_deterministic_per_tick() -> None:
    """The same (job, tick) gives the same id; another job or tick gives another."""
    a = scheduled_execution_id("backup", 1_700_000_000.0)
    assert a == scheduled_execution_id("backup", 1_700_000_000.0)
    assert a != scheduled_execution_id("backup", 1_700_000_060.0)
    assert a != scheduled_execution_id("rotate", 1_700_000_000.0)


def test_scheduled_id_sorts_with_its_tick() -> None:
    """A scheduled id carries its tick time, so it sorts among manual ids by time."""
    rng = random.Random(1)
    before = new_execution_id(now=1_699_999_999.0, rng=rng)
    after = new_execution_id(now=1_700_000_001.0, rng=rng)
    assert before < scheduled_execution_id("job", 1_700_000_000.0) < after


def test_idempotency_key_is_stable() -> None:
    """Work sent twice with the same parts carries the same key."""
    assert idempotency_key("wf", "run1", "step") == idempotency_key("wf", "run1", "step")
    assert idempotency_key("wf", "run1", "step") != idempotency_key("wf", "run2", "step")
