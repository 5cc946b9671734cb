"""History sync rules, both sides (DESIGN.md "Protocol").

Agent: ``make_batch`` turns the rows after the client's cursor into one
``HistoryBatch`` that fits in a frame. Client: ``plan_sync`` says what to do
with a batch given the cursor it stored: resync from 0 on a new epoch, record
a gap when retention removed history it never saw, then upsert the rows by
(agent, execution id) and store ``next_seq``; ask again while ``more``.
Upserting makes a repeated batch change nothing, so a crash anywhere loses
nothing: the cursor is stored in the same transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from shared.models import Execution
from shared.protocol.messages import HistoryBatch

__all__ = ["SyncPlan", "make_batch", "plan_sync"]

_ENCODER = msgspec.json.Encoder()
# Room for the envelope around the executions (ids, epoch, field names).
_ENVELOPE_BYTES = 1024


def make_batch(
    *,
    epoch: str,
    floor_seq: int,
    since_seq: int,
    rows: Sequence[Execution],
    limit: int,
    max_bytes: int,
) -> HistoryBatch:
    """The batch answering ``history.since(since_seq, limit)``.

    ``rows`` are the executions with seq > since_seq in seq order, fetched with
    ``limit + 1`` so that one extra row tells whether there is more. The batch
    stops early rather than exceed ``max_bytes`` (always at least one row, so
    sync always advances).
    """
    candidates = list(rows[:limit])
    # Issue 8: one encode of the whole list decides the usual case (everything fits);
    # its length is the sum of the per-row sizes below plus one (brackets and commas),
    # so the answer is the same as the loop's. Only a batch near the frame limit pays
    # for sizing row by row.
    if candidates and _ENVELOPE_BYTES + len(_ENCODER.encode(candidates)) - 1 <= max_bytes:
        return HistoryBatch(
            epoch=epoch,
            floor_seq=floor_seq,
            executions=candidates,
            next_seq=candidates[-1].seq,
            more=len(candidates) < len(rows),
        )
    chosen: list[Execution] = []
    size = _ENVELOPE_BYTES
    for row in candidates:
        row_size = len(_ENCODER.encode(row)) + 1
        if chosen and size + row_size > max_bytes:
            break
        chosen.append(row)
        size += row_size
    more = len(chosen) < len(rows)
    next_seq = chosen[-1].seq if chosen else since_seq
    return HistoryBatch(
        epoch=epoch, floor_seq=floor_seq, executions=chosen, next_seq=next_seq, more=more
    )


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a client does with one batch."""

    resync: bool  # new epoch: forget the cursor, ask from seq 0, apply nothing of this batch
    gap: tuple[int, int] | None  # seqs (first, last) that are gone on the agent: record them
    apply: Sequence[Execution]  # upsert these by (agent, id)
    next_seq: int  # the cursor to store with them
    ask_again: bool


def plan_sync(cursor_epoch: str | None, cursor_seq: int, batch: HistoryBatch) -> SyncPlan:
    """The client's rule for ``batch``, fetched with ``history.since(cursor_seq)``."""
    if cursor_epoch is not None and cursor_epoch != batch.epoch:
        # DESIGN.md: a new epoch means a new or restored database; the cursor means nothing there.
        return SyncPlan(resync=True, gap=None, apply=(), next_seq=0, ask_again=True)
    gap = None
    if batch.floor_seq > cursor_seq + 1:
        gap = (cursor_seq + 1, batch.floor_seq - 1)
    return SyncPlan(
        resync=False,
        gap=gap,
        apply=batch.executions,
        next_seq=max(cursor_seq, batch.next_seq),
        ask_again=batch.more,
    )
