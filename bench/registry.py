"""The benchmarks the runner knows, in run order, with their hard time bounds.

A benchmark is a module ``bench.bench_<name>`` with ``run(ctx) -> list[Row]``.
The bound is enforced by the runner (the child process is killed at the
bound); ``ctx.deadline`` lets a benchmark stop early and keep its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BENCHMARKS", "Benchmark", "by_name"]


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    summary: str
    bound_s: float
    quick_bound_s: float

    @property
    def module(self) -> str:
        return f"bench.bench_{self.name}"

    def bound(self, quick: bool) -> float:
        return self.quick_bound_s if quick else self.bound_s


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("fire_lag", "one job on an idle agent: scheduled instant -> child start", 170, 60),
    Benchmark("burst", "1,000 jobs due in the same second: misses and start lag", 170, 75),
    Benchmark("throughput", "short jobs fully recorded per second", 90, 45),
    Benchmark("idle", "idle agent with 100 jobs: RSS and CPU", 120, 45),
    Benchmark("exec_memory", "memory per running execution (200 x sleep)", 120, 60),
    Benchmark("log_capture", "log capture of 1 GiB: rate and agent RSS growth", 120, 60),
    Benchmark("sync", "history sync agent -> console on loopback", 90, 45),
    Benchmark("rtt", "request round trip vs raw websockets echo", 45, 30),
    Benchmark("jobsdir", "jobs.d: load and reload 1,000 file jobs, crontab import", 60, 40),
    Benchmark("components", "the supervisor and the store alone (info rows)", 150, 75),
    Benchmark("console_ui", "console: first paint over 1M rows, input latency", 200, 90),
    Benchmark("fleet", "1,000 agents on one console: memory per link, fan-out", 240, 90),
)


def by_name(name: str) -> Benchmark:
    for bench in BENCHMARKS:
        if bench.name == name:
            return bench
    known = ", ".join(b.name for b in BENCHMARKS)
    raise KeyError(f"no benchmark named {name!r} (known: {known})")
