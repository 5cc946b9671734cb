"""History sync rules (shared/protocol/history.py)."""

from __future__ import annotations

from shared.models import Execution
from shared.protocol import HistoryBatch, make_batch, plan_sync


def execution(seq: int, tail: str = "") -> Execution:
    return Execution(
        id=f"E{seq}",
        job="j",
        server="db1",
        run_id="R",
        trigger="schedule",
        status="success",
        seq=seq,
        stdout_tail=tail,
    )


def test_batch_takes_limit_and_says_more() -> None:
    """limit + 1 rows make a batch of limit rows with more=True and next_seq = last seq."""
    rows = [execution(s) for s in range(11, 17)]
    batch = make_batch(epoch="e", floor_seq=1, since_seq=10, rows=rows, limit=5, max_bytes=10**6)
    assert [x.seq for x in batch.executions] == [11, 12, 13, 14, 15]
    assert (batch.next_seq, batch.more) == (15, True)


def test_last_batch_says_no_more() -> None:
    """Fewer rows than limit + 1: more=False."""
    rows = [execution(s) for s in range(11, 14)]
    batch = make_batch(epoch="e", floor_seq=1, since_seq=10, rows=rows, limit=5, max_bytes=10**6)
    assert (batch.next_seq, batch.more) == (13, False)


def test_empty_batch_keeps_cursor() -> None:
    """No new rows: next_seq is the cursor asked from."""
    batch = make_batch(epoch="e", floor_seq=1, since_seq=42, rows=[], limit=5, max_bytes=10**6)
    assert (batch.executions, batch.next_seq, batch.more) == ([], 42, False)


def test_batch_stops_before_frame_limit() -> None:
    """Large rows end the batch early (with more=True) rather than exceed max_bytes."""
    rows = [execution(s, tail="x" * 3000) for s in range(1, 11)]
    batch = make_batch(epoch="e", floor_seq=1, since_seq=0, rows=rows, limit=10, max_bytes=10_000)
    assert 1 <= len(batch.executions) < 10 and batch.more


def test_one_huge_row_still_advances() -> None:
    """A single row larger than max_bytes is still sent alone, so sync never stalls."""
    batch = make_batch(
        epoch="e",
        floor_seq=1,
        since_seq=0,
        rows=[execution(1, "x" * 5000)],
        limit=10,
        max_bytes=100,
    )
    assert batch.next_seq == 1


def test_new_epoch_means_resync() -> None:
    """A batch from another epoch is not applied: resync from 0."""
    batch = HistoryBatch(
        epoch="new", floor_seq=1, executions=[execution(5)], next_seq=5, more=False
    )
    plan = plan_sync("old", 100, batch)
    assert plan.resync and plan.apply == () and plan.next_seq == 0


def test_retention_gap_is_reported() -> None:
    """A cursor below floor_seq reports the lost seqs as a gap, then applies the batch."""
    batch = HistoryBatch(
        epoch="e", floor_seq=50, executions=[execution(50)], next_seq=50, more=True
    )
    plan = plan_sync("e", 10, batch)
    assert plan.gap == (11, 49) and plan.next_seq == 50 and plan.ask_again


def test_first_sync_has_no_epoch_and_no_gap() -> None:
    """A first sync (no stored epoch, cursor 0, floor 1) applies without a gap."""
    batch = HistoryBatch(epoch="e", floor_seq=1, executions=[execution(1)], next_seq=1, more=False)
    plan = plan_sync(None, 0, batch)
    assert not plan.resync and plan.gap is None and plan.next_seq == 1 and not plan.ask_again
