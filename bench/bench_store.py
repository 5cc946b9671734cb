"""Benchmark of the agent store against raw sqlite3 (not part of the test suite).

    .venv/bin/python bench/bench_store.py [--executions 2000] [--history 200000]

Prints a Markdown table: executions/s for the real life-cycle (insert +
START + SUCCEED, three transactions) through ``Store.call`` at
synchronous=FULL and NORMAL, against raw sqlite3 single-row transactions and
batched inserts; then query latencies on a history of ``--history`` rows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from agentd.store import Store, executions
from agentd.store.store import Synchronous
from shared.enums import ExecutionStatus, Trigger
from shared.ids import new_execution_id, scheduled_execution_id
from shared.models import Execution
from shared.status import Event

T0 = 1_790_000_000.0
DAY = 86_400.0
# bench/bench_components.py calls _lifecycle and _raw: keep their signatures.


def _tick(job: str, at: float) -> Execution:
    eid = scheduled_execution_id(job, at)
    return Execution(
        id=eid,
        job=job,
        server="db1",
        run_id=eid,
        trigger=Trigger.SCHEDULE,
        status=ExecutionStatus.QUEUED,
        scheduled_for=at,
        created_at=at,
    )


async def _lifecycle(path: Path, n: int, synchronous: Synchronous, in_flight: int) -> float:
    """Executions/s: insert, start, succeed, each its own transaction, via ``await store.call``."""
    store = await Store.open(path, synchronous=synchronous)
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            ex = await store.call(executions.insert_execution, _tick("job", T0 + i))
            assert ex is not None
            await store.call(executions.apply_event, ex.id, Event.START, now=T0 + i, pid=1)
            await store.call(executions.apply_event, ex.id, Event.SUCCEED, now=T0 + i + 1)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    await store.close()
    return n / elapsed


def _batched_store(path: Path, n: int, batch: int) -> float:
    """Rows/s of ``insert_executions`` in batches (the scheduler's many-ticks-due case)."""
    store = Store.open_sync(path)
    ticks = [_tick("job", T0 + i) for i in range(n)]
    start = time.perf_counter()
    for k in range(0, n, batch):
        store.call_sync(executions.insert_executions, ticks[k : k + batch])
    elapsed = time.perf_counter() - start
    store.close_sync()
    return n / elapsed


def _raw(path: Path, n: int, synchronous: str, batch: int) -> float:
    """Rows/s of plain sqlite3 INSERTs of a similar row, ``batch`` rows per transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(
        "CREATE TABLE t (id TEXT PRIMARY KEY, job TEXT, status TEXT, scheduled_for REAL, "
        "created_at REAL, seq INTEGER)"
    )
    start = time.perf_counter()
    for k in range(0, n, batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, 'queued', ?, ?, ?)",
            [(f"id{i}", "job", T0 + i, T0 + i, i) for i in range(k, min(n, k + batch))],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def _fill_history(path: Path, rows: int) -> None:
    """``rows`` finished executions over 30 days, 100 jobs, 5% failed."""
    rng = random.Random(1)
    store = Store.open_sync(path, synchronous="NORMAL")
    batch = []
    for i in range(rows):
        at = T0 - 30 * DAY + i * (30 * DAY / rows)
        failed = rng.random() < 0.05
        batch.append(
            Execution(
                id=new_execution_id(now=at, rng=rng),
                job=f"job{i % 100}",
                server="db1",
                run_id="r",
                trigger=Trigger.MANUAL,
                status=ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCESS,
                created_at=at,
                started_at=at,
                finished_at=at + 1,
            )
        )
        if len(batch) == 5_000:
            store.call_sync(executions.insert_executions, batch)
            batch = []
    if batch:
        store.call_sync(executions.insert_executions, batch)
    store.close_sync()


def _latency_ms(store: Store, fn: object, repeat: int, **kwargs: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        store.call_sync(fn, **kwargs)  # type: ignore[arg-type]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=2_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    n = args.executions
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        raw_full = _raw(d / "raw_full.db", n, "FULL", 1)
        raw_normal = _raw(d / "raw_normal.db", n, "NORMAL", 1)
        raw_batch = _raw(d / "raw_batch.db", n * 10, "FULL", 1_000)
        full = asyncio.run(_lifecycle(d / "full.db", n, "FULL", args.in_flight))
        full_1 = asyncio.run(_lifecycle(d / "full1.db", n // 4, "FULL", 1))
        normal = asyncio.run(_lifecycle(d / "normal.db", n, "NORMAL", args.in_flight))
        batched = _batched_store(d / "batched.db", n * 10, 1_000)

        print(f"## store throughput ({n} executions; in flight: {args.in_flight} or 1)\n")
        print("| what | per second | store calls/s | calls/s vs raw 1-row tx, same sync |")
        print("|---|---:|---:|---:|")
        print(f"| raw sqlite3 INSERT, 1 row/tx, FULL | {raw_full:,.0f} rows | - | 1 |")
        print(f"| raw sqlite3 INSERT, 1 row/tx, NORMAL | {raw_normal:,.0f} rows | - | 1 |")
        for label, rate, raw in (
            (f"FULL, {args.in_flight} in flight (group commit)", full, raw_full),
            ("FULL, 1 in flight (no grouping possible)", full_1, raw_full),
            (f"NORMAL, {args.in_flight} in flight", normal, raw_normal),
        ):
            print(
                f"| store life-cycle (insert+start+succeed), {label} | {rate:,.0f} executions "
                f"| {3 * rate:,.0f} | {3 * rate / raw:.2f} |"
            )
        print(f"| raw sqlite3 INSERT, 1000 rows/tx, FULL | {raw_batch:,.0f} rows | - | - |")
        print(
            f"| store insert_executions, 1000 rows/tx, FULL | {batched:,.0f} rows | - "
            f"| {batched / raw_batch:.2f} of raw batched |"
        )

        history = d / "history.db"
        _fill_history(history, args.history)
        store = Store.open_sync(history)
        last50 = _latency_ms(store, executions.query_executions, 50, job="job7", limit=50)
        failed = _latency_ms(
            store,
            executions.query_executions,
            20,
            status="failed",
            since=T0 - DAY,
            limit=10_000,
        )
        page = _latency_ms(store, executions.changes_since, 20, seq=args.history // 2, limit=500)
        active = _latency_ms(store, executions.count_active, 50, job="job7")
        store.close_sync()
        print(f"\n## queries on {args.history:,} rows (median ms)\n")
        print("| query | ms |")
        print("|---|---:|")
        print(f"| last 50 runs of a job | {last50:.2f} |")
        print(f"| failed in the last 24 h | {failed:.2f} |")
        print(f"| changes_since, batch of 500 | {page:.2f} |")
        print(f"| count_active(job) | {active:.3f} |")


if __name__ == "__main__":
    main()
