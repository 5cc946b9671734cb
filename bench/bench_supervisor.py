"""Benchmark the job supervisor against the goals of issue 8; prints a markdown table.

    .venv/bin/python bench/bench_supervisor.py [--sleepers 200] [--spawns 1000] [--gib 1]

* memory per running execution: supervisor RSS growth / N while N ``sleep 60``
  jobs run (plus the kernel's per-job pipe/fd cost is not in RSS: pipes hold no
  pages while empty). Goal: <= 3 MB.
* 1 GiB capture: a supervised ``head -c 1G /dev/zero`` (default 10 MiB cap,
  and a cap above 1 GiB so every byte is written) against
  ``head -c 1G /dev/zero > file``. Goal: >= 0.5x, agent RSS growth < 20 MB.
* short jobs fully recorded (started, exit.json written, exit pushed and
  acked) per second against raw ``subprocess.Popen`` of the same command,
  64 in flight each. Goal: >= 0.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentd.supervisor import ExitRecord, RunSpec, SupervisorClient  # noqa: E402
from agentd.supervisor.server import supervisor_dir  # noqa: E402

CONTAINMENT = "auto"
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _spec(data: Path, exec_id: str, argv: list[str], **kw) -> RunSpec:
    return RunSpec(
        exec_id=exec_id,
        argv=argv,
        env={**ENV, "SQU_EXECUTION_ID": exec_id},
        run_dir=str(data / "runs" / exec_id),
        **kw,
    )


def _rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


async def _drain_exits(sup: SupervisorClient, want: set[str]) -> dict[str, ExitRecord]:
    got: dict[str, ExitRecord] = {}
    async for rec in sup.exits():
        await sup.ack(rec.exec_id)
        if rec.exec_id in want:
            got[rec.exec_id] = rec
            if len(got) == len(want):
                return got
    return got


async def bench_memory(data: Path, n: int) -> dict[str, float]:
    sup = await SupervisorClient.connect_or_spawn(data, containment=CONTAINMENT)
    pid = sup.supervisor_pid
    # Warm up one job so lazily-imported code and buffers are counted as base.
    warm = _spec(data, "WARM", ["true"])
    await sup.start(warm)
    await _drain_exits(sup, {"WARM"})
    await asyncio.sleep(0.2)
    before = _rss(pid)
    ids = [f"MEM{i:05d}" for i in range(n)]
    for exec_id in ids:
        await sup.start(_spec(data, exec_id, ["sleep", "60"], kill_grace_s=1))
    await asyncio.sleep(1.5)  # one upkeep tick (memory sampling) included
    after = _rss(pid)
    fds = psutil.Process(pid).num_fds()
    for exec_id in ids:
        await sup.cancel(exec_id)
    await _drain_exits(sup, set(ids))
    await sup.close()
    return {
        "base_rss_mb": before / 1e6,
        "rss_mb": after / 1e6,
        "per_job_kb": (after - before) / n / 1024,
        "fds": fds,
        "containment": sup.containment,
    }


async def bench_capture(data: Path, size: str, tmp: Path) -> dict[str, float]:
    target = tmp / "raw.out"
    t0 = time.perf_counter()
    await asyncio.to_thread(
        subprocess.run, ["sh", "-c", f"head -c {size} /dev/zero > {target}"], check=True
    )
    raw_s = time.perf_counter() - t0
    target.unlink()
    out: dict[str, float] = {"raw_s": raw_s}
    sup = await SupervisorClient.connect_or_spawn(data, containment=CONTAINMENT)
    me = psutil.Process()
    for label, cap in (("capped", 10 << 20), ("full", 2 << 30)):
        my_before, sup_before = me.memory_info().rss, _rss(sup.supervisor_pid)
        sup_peak = sup_before
        exec_id = f"CAP{label}"
        t0 = time.perf_counter()
        await sup.start(_spec(data, exec_id, ["head", "-c", size, "/dev/zero"], max_log_bytes=cap))
        task = asyncio.create_task(_drain_exits(sup, {exec_id}))
        while not task.done():
            sup_peak = max(sup_peak, _rss(sup.supervisor_pid))
            await asyncio.sleep(0.05)
        rec = task.result()[exec_id]
        took = time.perf_counter() - t0
        out[f"{label}_s"] = took
        out[f"{label}_ratio"] = raw_s / took
        out[f"{label}_agent_growth_mb"] = (me.memory_info().rss - my_before) / 1e6
        out[f"{label}_sup_growth_mb"] = (sup_peak - sup_before) / 1e6
        out[f"{label}_dropped"] = rec.dropped_bytes
        shutil.rmtree(data / "runs" / exec_id, ignore_errors=True)
    await sup.close()
    return out


async def bench_spawn(data: Path, n: int, inflight: int = 64) -> dict[str, float]:
    argv = ["/bin/true"]
    raw_rate = await asyncio.to_thread(_raw_spawn_rate, argv, n, inflight)

    sup = await SupervisorClient.connect_or_spawn(data, containment=CONTAINMENT)
    ids = [f"SP{i:06d}" for i in range(n)]
    sem = asyncio.Semaphore(inflight)
    done = asyncio.Event()
    finished = 0

    async def consume() -> None:
        nonlocal finished
        async for rec in sup.exits():
            await sup.ack(rec.exec_id)
            if rec.exec_id.startswith("SP"):
                finished += 1
                sem.release()
                if finished == n:
                    done.set()
                    return

    consumer = asyncio.create_task(consume())
    starters: set[asyncio.Task[object]] = set()
    sup_proc, me = psutil.Process(sup.supervisor_pid), psutil.Process()
    sup_cpu0, my_cpu0 = sum(sup_proc.cpu_times()[:2]), sum(me.cpu_times()[:2])
    t0 = time.perf_counter()
    for exec_id in ids:
        await sem.acquire()
        # One task per start, as the executor does for jobs due together.
        task = asyncio.create_task(sup.start(_spec(data, exec_id, argv)))
        starters.add(task)
        task.add_done_callback(starters.discard)
    await done.wait()
    sup_rate = n / (time.perf_counter() - t0)
    sup_cpu_ms = (sum(sup_proc.cpu_times()[:2]) - sup_cpu0) / n * 1000
    my_cpu_ms = (sum(me.cpu_times()[:2]) - my_cpu0) / n * 1000
    consumer.cancel()
    await sup.close()
    return {
        "raw_rate": raw_rate,
        "sup_rate": sup_rate,
        "ratio": sup_rate / raw_rate,
        "sup_cpu_ms": sup_cpu_ms,
        "client_cpu_ms": my_cpu_ms,
    }


def _raw_spawn_rate(argv: list[str], n: int, inflight: int) -> float:
    """Popen + wait, ``inflight`` at a time: the floor any supervisor pays."""
    t0 = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    for _ in range(n):
        procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=ENV))
        if len(procs) >= inflight:
            procs.pop(0).wait()
    for p in procs:
        p.wait()
    return n / (time.perf_counter() - t0)


def _stop(data: Path) -> None:
    try:
        pid = int((supervisor_dir(data) / "pid").read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleepers", type=int, default=200)
    parser.add_argument("--spawns", type=int, default=1000)
    parser.add_argument("--size", default="1G")
    parser.add_argument("--only", choices=("memory", "capture", "spawn"), default=None)
    parser.add_argument("--dir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    parser.add_argument("--containment", choices=("auto", "sweep"), default="auto")
    args = parser.parse_args()
    global CONTAINMENT
    CONTAINMENT = args.containment
    tmp = Path(tempfile.mkdtemp(prefix="squ-bench-", dir=args.dir))
    data = tmp / "data"
    data.mkdir()
    want = {args.only} if args.only else {"memory", "capture", "spawn"}
    mem = cap = spawn = None
    try:
        if "memory" in want:
            mem = await bench_memory(data, args.sleepers)
        if "capture" in want:
            cap = await bench_capture(data, args.size, tmp)
        if "spawn" in want:
            spawn = await bench_spawn(data, args.spawns)
        probe = await SupervisorClient.connect_or_spawn(data, containment=CONTAINMENT)
        containment = f"{probe.containment} ({probe.containment_detail})"
        await probe.close()
    finally:
        _stop(data)
    print(f"containment: {containment}; cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}\n")
    print("| measure | value | goal | ratio |")
    print("|---|---|---|---|")
    if mem is not None:
        print(
            f"| supervisor RSS, idle / with {args.sleepers} `sleep 60` | "
            f"{mem['base_rss_mb']:.1f} MB / {mem['rss_mb']:.1f} MB | | |"
        )
        print(f"| memory per running execution | {mem['per_job_kb']:.0f} KB | <= 3 MB | |")
        print(f"| supervisor fds with {args.sleepers} running | {mem['fds']} | | |")
    if cap is not None:
        print(f"| `head -c {args.size} /dev/zero > file` | {cap['raw_s']:.2f} s | | 1.00x |")
        for label, what in (("capped", "10 MiB cap"), ("full", "every byte kept")):
            print(
                f"| supervised {args.size}, {what} | {cap[f'{label}_s']:.2f} s | >= 0.5x | "
                f"{cap[f'{label}_ratio']:.2f}x |"
            )
            print(
                f"| agent / supervisor RSS growth, {what} | "
                f"{cap[f'{label}_agent_growth_mb']:.1f} MB / "
                f"{cap[f'{label}_sup_growth_mb']:.1f} MB | < 20 MB | |"
            )
    if spawn is not None:
        print(f"| raw `Popen(/bin/true)`, 64 in flight | {spawn['raw_rate']:.0f}/s | | 1.00x |")
        print(
            f"| supervised `/bin/true`, fully recorded | {spawn['sup_rate']:.0f}/s | >= 0.5x | "
            f"{spawn['ratio']:.2f}x |"
        )
        print(
            f"| CPU per short job: supervisor / client | {spawn['sup_cpu_ms']:.2f} ms / "
            f"{spawn['client_cpu_ms']:.2f} ms | | |"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
