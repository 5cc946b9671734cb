"""History sync agent -> console on loopback, in rows per second.

squ-cron: a real agent server (``bench/server.py``) whose store holds N
executions; the console's own link (``Link.sync_history``: ``history.since``
by cursor, 1,000 per batch, each batch and the cursor in one ``Mirror``
transaction) pulls them all into a fresh console mirror.
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
from bench.server import agent_server, console_link

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
        from console.fleet.mirror import Mirror, RunFilter
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"console.fleet.mirror ({exc.name})") from None

    work = ctx.scratch("sync")

    async def pull(url: str, key: object) -> tuple[float, list[Any]]:
        mirror = Mirror.open(work / "mirror.db")
        try:
            async with console_link(url, key) as link:
                started = time.perf_counter()
                stored = await link.sync_history(mirror=mirror, batch=BATCH)
                elapsed = time.perf_counter() - started
            if stored != count:
                raise BenchError(f"synced {stored} rows, expected {count}")
            # Read back what the mirror stored: the reference inserts exactly these rows.
            runs = mirror.page_runs(RunFilter(), None, count)
            return elapsed, runs
        finally:
            mirror.close()

    ctx.log(f"agent server with {count:,} executions; the console's link syncs its mirror")
    with agent_server(ctx.scratch("sync-server"), rows=count) as server:
        elapsed, runs = asyncio.run(pull(server.url, server.key))
    ctx.log("raw sqlite3: the same rows, 1,000 per transaction")
    raw = raw_insert_rate(work, [r.execution for r in runs])
    note = (
        f"{count:,} rows in {elapsed:.2f} s through console.fleet.link.Link.sync_history "
        f"(batch {BATCH}); reference is the same rows, same columns"
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
