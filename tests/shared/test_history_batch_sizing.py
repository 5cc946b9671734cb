"""make_batch's one-encode fast path chooses exactly what sizing row by row chooses (issue 8)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.models import Execution
from shared.protocol import make_batch

_ENCODER = msgspec.json.Encoder()
_ENVELOPE_BYTES = 1024


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


def row_by_row(rows: list[Execution], limit: int, max_bytes: int) -> list[Execution]:
    """The rule as first written: add rows while the running size fits (always one)."""
    chosen: list[Execution] = []
    size = _ENVELOPE_BYTES
    for row in rows[:limit]:
        row_size = len(_ENCODER.encode(row)) + 1
        if chosen and size + row_size > max_bytes:
            break
        chosen.append(row)
        size += row_size
    return chosen


@settings(max_examples=60, deadline=None)
@given(
    tails=st.lists(st.text(max_size=300), min_size=1, max_size=12),
    limit=st.integers(min_value=1, max_value=12),
    slack=st.integers(min_value=-400, max_value=400),
)
def test_fast_path_chooses_the_same_rows(tails: list[str], limit: int, slack: int) -> None:
    """Near the frame limit (either side), the batch holds what sizing row by row takes."""
    rows = [execution(i + 1, tail) for i, tail in enumerate(tails)]
    whole = _ENVELOPE_BYTES + len(_ENCODER.encode(rows[:limit])) - 1
    max_bytes = max(1, whole + slack)
    batch = make_batch(
        epoch="e", floor_seq=1, since_seq=0, rows=rows, limit=limit, max_bytes=max_bytes
    )
    expected = row_by_row(rows, limit, max_bytes)
    assert batch.executions == expected
    assert batch.next_seq == expected[-1].seq
    assert batch.more == (len(expected) < len(rows))


def test_batch_exactly_at_the_limit_takes_every_row() -> None:
    """A batch whose size equals max_bytes exactly is sent whole, as row-by-row sizing did."""
    rows = [execution(s, "x" * 100) for s in range(1, 6)]
    exact = _ENVELOPE_BYTES + len(_ENCODER.encode(rows)) - 1
    batch = make_batch(epoch="e", floor_seq=1, since_seq=0, rows=rows, limit=5, max_bytes=exact)
    smaller = make_batch(
        epoch="e", floor_seq=1, since_seq=0, rows=rows, limit=5, max_bytes=exact - 1
    )
    assert (len(batch.executions), batch.more) == (5, False)
    assert (len(smaller.executions), smaller.more) == (4, True)
