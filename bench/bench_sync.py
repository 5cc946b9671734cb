"""History sync agent -> console on loopback, in rows per second.

squ-cron: a real agent server (``bench/server.py``) whose store holds N
executions; a logged-in protocol client pulls them with ``history.since``
(1,000 per batch, the cursor from each batch) and stores each batch in the
console's real ``Mirror`` (``upsert_executions``: rows + cursor in one
transaction), as the console's link does, until the mirror has all N.
Reference: the same rows (as the mirror stores them) inserted with raw
``sqlite3``, 1,000 per transaction, WAL, into a table of the same columns.
Goal: >= 0.5x that. The wire alone is measured too (raw websockets, 100
records per frame), to show it is not the limit.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.core import BenchError, Context, NotBuilt, Row, fmt_rate, judge_min, ratio
from bench.refs.sqlite import batched_insert_rate
from bench.refs.ws import batched_record_rate
from bench.server import agent_server, client_class

__all__ = ["raw_insert_rate", "run", "squ_sync"]

GOAL_RATIO = 0.5
BATCH = 1000


def _tuples(executions: list[Any]) -> list[tuple[Any, ...]]:
    """The rows as the mirror stores them: agent, epoch, then every Execution field."""
    out = []
    for ex in executions:
        values = [json.dumps(v) if isinstance(v, dict) else v for v in msgspec.structs.astuple(ex)]
        out.append(("db1", "E", *values))
    return out


def raw_insert_rate(work: Path, executions: list[Any]) -> float:
    """Raw sqlite3: the same rows, 1,000 per transaction, WAL, NORMAL; rows/s."""
    rows = _tuples(executions)
    fields = ["agent", "epoch", *type(executions[0]).__struct_fields__]
    path = work / "raw-same-rows.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"CREATE TABLE t ({', '.join(fields)}, PRIMARY KEY (agent, id))")
        sql = f"INSERT INTO t VALUES ({','.join('?' * len(fields))})"
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            db.execute("BEGIN")
            db.executemany(sql, rows[i : i + BATCH])
            db.execute("COMMIT")
        return len(rows) / (time.perf_counter() - started)
    finally:
        db.close()


def squ_sync(ctx: Context, count: int) -> tuple[float, float, str]:
    """(squ rows/s into the mirror, raw rows/s of the same rows, note)."""
    try:
        from console.fleet.mirror import Mirror
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"console.fleet.mirror ({exc.name})") from None
    from shared.protocol import HistorySince

    Client = client_class()
    work = ctx.scratch("sync")

    async def pull(url: str, key: object) -> tuple[float, float, list[Any]]:
        client = await Client.login(url, key)
        mirror = Mirror.open(work / "mirror.db")
        kept: list[Any] = []
        wire_s = 0.0
        try:
            cursor = got = 0
            started = time.perf_counter()
            while True:
                t = time.perf_counter()
                batch = await client.call("history.since", HistorySince(seq=cursor, limit=BATCH))
                wire_s += time.perf_counter() - t
                mirror.upsert_executions("db1", batch.epoch, batch.executions, batch.next_seq)
                got += len(batch.executions)
                if len(kept) < count:
                    kept += batch.executions
                client.frames.clear()  # the test client keeps every frame; we do not need them
                cursor = batch.next_seq
                if not batch.more:
                    break
            elapsed = time.perf_counter() - started
            if got != count:
                raise BenchError(f"synced {got} rows, expected {count}")
            return elapsed, wire_s, kept
        finally:
            mirror.close()
            await client.close()

    ctx.log(f"agent server with {count:,} executions; console pulls into its mirror")
    with agent_server(ctx.scratch("sync-server"), rows=count) as server:
        elapsed, wire_s, executions = asyncio.run(pull(server.url, server.key))
    ctx.log("raw sqlite3: the same rows, 1,000 per transaction")
    raw = raw_insert_rate(work, executions)
    note = (
        f"{count:,} rows in {elapsed:.2f} s ({wire_s:.2f} s waiting on the wire); "
        f"reference is the same rows, same columns"
    )
    return count / elapsed, raw, note


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(30_000, 10_000)
    ctx.log(f"raw websockets: {count:,} records, 100 per frame")
    wire = batched_record_rate(count)
    squ: float | None
    try:
        squ, raw, note = squ_sync(ctx, count)
    except BenchError as exc:
        squ, note = None, str(exc)
        ctx.log(f"raw sqlite3: {count:,} sample rows, 1,000 per transaction")
        raw = batched_insert_rate(ctx.scratch("sqlite"), count)
    r = ratio(squ, raw)
    return [
        Row(
            metric="history sync agent -> console (rows/s)",
            squ="not built yet" if squ is None else fmt_rate(squ),
            reference=f"raw sqlite3 batched {fmt_rate(raw)}",
            ratio=r,
            goal=f">= {GOAL_RATIO}x raw batched insert",
            passed=judge_min(r, GOAL_RATIO),
            note=f"{note}; raw websockets carries {fmt_rate(wire, ' records/s')} (100 per frame)",
        )
    ]
