"""The agent's parts alone, to show where end-to-end time goes (info rows).

Wraps the part owners' own benchmarks rather than rewriting them:

* ``bench/bench_supervisor.py`` (``bench_spawn``, ``bench_memory``): the
  supervisor driven directly by its client, no store, no scheduler;
* ``bench/bench_store.py`` (``_lifecycle``, ``_raw``): the store's execution
  life-cycle (insert, start, succeed: three transactions) against raw sqlite3
  single-row transactions at the same ``synchronous`` level.

If the end-to-end rows (throughput, burst) fall short while these are fast,
the limit is in how the agent drives its parts, not in the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from pathlib import Path
from typing import Any

from bench.core import BenchError, Context, NotBuilt, Row, fmt_rate, ratio

__all__ = ["run"]


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"{name} ({exc.name})") from None


def supervisor_rows(ctx: Context) -> list[Row]:
    sup = _import("bench.bench_supervisor")
    data = ctx.scratch("supervisor-data")
    spawns = ctx.pick(300, 100)
    sleepers = ctx.pick(100, 50)
    try:
        ctx.log(f"supervisor alone: {spawns} x /bin/true fully recorded, 64 in flight")
        spawn = asyncio.run(sup.bench_spawn(data, spawns))
        ctx.log(f"supervisor alone: {sleepers} x sleep 60")
        mem = asyncio.run(sup.bench_memory(data, sleepers))
    finally:
        sup._stop(data)
    return [
        Row(
            metric="part: supervisor alone, short jobs recorded per second",
            squ=fmt_rate(spawn["sup_rate"]),
            reference=f"raw Popen(/bin/true) {fmt_rate(spawn['raw_rate'])}",
            ratio=spawn["ratio"],
            goal="info (end-to-end goal: >= 0.5x)",
            passed=None,
            note=f"{spawns} jobs, 64 in flight; bench_supervisor.bench_spawn",
        ),
        Row(
            metric="part: supervisor alone, memory per running job",
            squ=f"{mem['per_job_kb']:.0f} KiB",
            reference="-",
            ratio=None,
            goal="info (end-to-end goal: <= 3 MB)",
            passed=None,
            note=(
                f"{sleepers} x sleep 60; supervisor RSS {mem['base_rss_mb']:.1f} -> "
                f"{mem['rss_mb']:.1f} MB; {mem['fds']} fds; containment {mem['containment']}"
            ),
        ),
    ]


def store_rows(ctx: Context) -> list[Row]:
    store = _import("bench.bench_store")
    work = ctx.scratch("store")
    n = ctx.pick(500, 200)
    rows = []
    for sync in ("FULL", "NORMAL"):
        ctx.log(f"store alone: {n} execution life-cycles, synchronous={sync}, 16 in flight")
        raw = store._raw(Path(work / f"raw-{sync}.db"), n, sync, 1)
        life = asyncio.run(store._lifecycle(Path(work / f"store-{sync}.db"), n, sync, 16))
        rows.append(
            Row(
                metric=f"part: store execution life-cycles per second ({sync})",
                squ=f"{fmt_rate(life)} ({fmt_rate(3 * life, ' tx/s')})",
                reference=f"raw sqlite3 1 row/tx {fmt_rate(raw, ' tx/s')}",
                ratio=ratio(3 * life, raw),
                goal="info (transactions vs raw)",
                passed=None,
                note="insert + start + succeed = 3 transactions; group commit; bench_store",
            )
        )
    return rows


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for name, part in (("supervisor", supervisor_rows), ("store", store_rows)):
        try:
            rows += part(ctx)
        except BenchError as exc:
            rows.append(
                Row.not_built(f"part: {name} alone", reference="-", goal="info", note=str(exc))
            )
        except Exception as exc:  # their benchmark changed shape: say so, keep the others
            with contextlib.suppress(Exception):
                ctx.log(f"{name} part failed: {exc!r}")
            rows.append(
                Row(
                    metric=f"part: {name} alone",
                    squ="error",
                    reference="-",
                    ratio=None,
                    goal="info",
                    passed=None,
                    note=f"bench_{name}.py did not fit the wrapper: {exc!r}"[:200],
                )
            )
    return rows
