"""jobs.d at scale: loading and reloading 1,000 file-declared jobs, importing a crontab.

squ-cron: ``JobsDir.load()`` over 100 files of 10 jobs each (every job fully
validated: cron, zone, env rules), then a reload with no file changed (the
SIGHUP a configuration-management run sends after touching nothing). The
reference is the floor: ``tomllib`` alone parsing the same files. Goals: first
load under 2 s, unchanged reload under 250 ms (it re-reads and hashes, it
does not re-parse). Also: ``import_crontab`` of a 1,000-line crontab.

    python -m bench.bench_jobsdir        # prints the rows
"""

from __future__ import annotations

import statistics
import sys
import time
import tomllib
from pathlib import Path

from agentd.jobsdir import JobsDir
from bench.core import Context, Row, fmt_ms, judge_max, ratio
from shared.crontab import import_crontab

__all__ = ["run"]

FIRST_LOAD_GOAL_S = 2.0
RELOAD_GOAL_S = 0.25


def _write_files(root: Path, files: int, per_file: int) -> Path:
    jobs_d = root / "jobs.d"
    jobs_d.mkdir(mode=0o755)
    jobs_d.chmod(0o755)
    for f in range(files):
        text = '[defaults]\ntimezone = "Europe/Paris"\nretry = { count = 2 }\n' + "".join(
            f'[job.j{f}-{i}]\ncommand = "/usr/local/bin/task {i} --flag"\n'
            f'cron = "{i % 60} */2 * * 1-5"\nenv = {{ A = "1" }}\n'
            for i in range(per_file)
        )
        path = jobs_d / f"f{f:03d}.toml"
        path.write_text(text)
        path.chmod(0o644)
    return jobs_d


def _median(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(ctx: Context) -> list[Row]:
    files = ctx.pick(100, 20)
    repeats = ctx.pick(5, 3)
    jobs_d = _write_files(ctx.scratch("jobsdir"), files, 10)
    paths = sorted(jobs_d.glob("*.toml"))

    floor = _median(lambda: [tomllib.loads(p.read_text()) for p in paths], repeats)
    first = _median(lambda: JobsDir(jobs_d).load(), repeats)
    warm = JobsDir(jobs_d)
    loaded = warm.load()
    assert len(loaded.jobs) == files * 10 and not loaded.errors
    reload = _median(warm.load, repeats)
    ctx.log(f"floor {fmt_ms(floor)}, first {fmt_ms(first)}, reload {fmt_ms(reload)}")

    crontab = "".join(f"{i % 60} {i % 24} * * * /usr/local/bin/job{i} --x\n" for i in range(1000))
    imported = _median(lambda: import_crontab(crontab, system=False), repeats)
    count = files * 10
    return [
        Row(
            metric=f"jobs.d first load, {count:,} jobs in {files} files",
            squ=fmt_ms(first),
            reference=f"{fmt_ms(floor)} (tomllib only)",
            ratio=ratio(first, floor),
            goal=f"< {FIRST_LOAD_GOAL_S:g} s",
            passed=judge_max(first, FIRST_LOAD_GOAL_S),
        ),
        Row(
            metric=f"jobs.d reload, nothing changed, {count:,} jobs",
            squ=fmt_ms(reload),
            reference=f"{fmt_ms(floor)} (tomllib only)",
            ratio=ratio(reload, floor),
            goal=f"< {RELOAD_GOAL_S * 1000:g} ms",
            passed=judge_max(reload, RELOAD_GOAL_S),
        ),
        Row(
            metric="crontab import, 1,000 lines",
            squ=fmt_ms(imported),
            reference="-",
            ratio=None,
            goal="< 2 s",
            passed=judge_max(imported, 2.0),
        ),
    ]


if __name__ == "__main__":
    context = Context(quick="--quick" in sys.argv)
    try:
        for row in run(context):
            print(f"{row.metric}: {row.squ} (reference {row.reference}; goal {row.goal})")
    finally:
        context.cleanup()
