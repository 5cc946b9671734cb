"""``python -m bench``: run the benchmarks and print (and record) the table.

    python -m bench                  # everything; rewrites docs/performance.md
    python -m bench fire_lag idle    # some (the page is left alone unless --write)
    python -m bench --quick          # the smaller, faster variant of each
    python -m bench --list           # names, bounds and what each measures

Each benchmark runs in its own child process (its own session), killed at its
hard time bound: SIGTERM first so it can stop what it started, SIGKILL after a
grace period. A benchmark that fails or times out still gets a row saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.core import Context, Row
from bench.registry import BENCHMARKS, Benchmark, by_name
from bench.report import (
    machine_facts,
    merged_table,
    recorded_facts,
    render_report,
    render_table,
    write_performance,
)

REPO = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = REPO / "docs" / "performance.md"
# After SIGTERM at the bound, how long a benchmark gets to stop its agents.
KILL_GRACE_S = 10.0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller and faster variant")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--write", action="store_true", help="update docs/performance.md even for a subset"
    )
    parser.add_argument("--no-write", action="store_true", help="never touch docs/performance.md")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rows-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bound", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _child(args: argparse.Namespace) -> int:
    """Inside the child process: run one benchmark, write its rows as JSON."""

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds, so `finally` blocks stop agents

    signal.signal(signal.SIGTERM, on_term)
    bench = by_name(args.child)
    ctx = Context(quick=args.quick, deadline=time.monotonic() + args.bound)
    try:
        module = importlib.import_module(bench.module)
        rows = module.run(ctx)
    except Exception as exc:  # the table must say what broke, not just "exit status 1"
        traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1]
        why = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        rows = [_failure(bench, why[:300])]
    finally:
        ctx.cleanup()
    args.rows_out.write_text(json.dumps([r.to_dict() for r in rows]))
    return 0


def _failure(bench: Benchmark, why: str) -> Row:
    return Row(
        metric=f"{bench.name}: benchmark did not finish",
        squ="-",
        reference="-",
        ratio=None,
        goal="finishes within its bound",
        passed=False,
        note=why,
    )


def run_one(bench: Benchmark, *, quick: bool) -> list[Row]:
    """Run ``bench`` in a child process under its hard bound; always returns rows."""
    bound = bench.bound(quick)
    with tempfile.TemporaryDirectory(prefix="squ-bench-rows-") as tmp:
        rows_out = Path(tmp) / "rows.json"
        argv = [sys.executable, "-m", "bench", "--child", bench.name]
        argv += ["--rows-out", str(rows_out), "--bound", str(bound - KILL_GRACE_S)]
        if quick:
            argv.append("--quick")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        child = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
        timed_out = False
        try:
            child.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(child)
        except KeyboardInterrupt:
            _stop_group(child)
            raise
        if rows_out.exists():
            return [Row.from_dict(d) for d in json.loads(rows_out.read_text())]
        if timed_out:
            return [_failure(bench, f"killed at its bound of {bound:.0f} s")]
        return [_failure(bench, f"exited with status {child.returncode} (see stderr above)")]


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the benchmark's session, then SIGKILL it after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<12} {b.bound_s:>4.0f} s ({b.quick_bound_s:.0f} s quick)  {b.summary}")
        return 0
    try:
        chosen = [by_name(n) for n in args.names] if args.names else list(BENCHMARKS)
    except KeyError as exc:
        print(f"python -m bench: {exc.args[0]}", file=sys.stderr)
        return 2
    facts = machine_facts(REPO)
    started = time.monotonic()
    rows: list[Row] = []
    for bench in chosen:
        print(f"== {bench.name}: {bench.summary}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            got = run_one(bench, quick=args.quick)
        except Exception:  # the runner must print a table whatever one benchmark does
            got = [_failure(bench, traceback.format_exc(limit=1).strip().splitlines()[-1])]
        rows += got
        print(f"   {bench.name} took {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    facts["total run time"] = f"{time.monotonic() - started:.0f} s"
    facts["mode"] = "quick" if args.quick else "full"
    print(render_table(rows))
    command = "python -m bench" + (" --quick" if args.quick else "")
    command += "".join(f" {n}" for n in args.names)
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in rows], indent=1))
    if not args.no_write and (args.write or not args.names):
        # A subset updates its own rows and keeps the others from the run that made them.
        table = merged_table(PERFORMANCE_MD, rows) if args.names else None
        if args.names:
            # Keep the facts of the run that made the other rows; say what was redone.
            old_command, old_facts = recorded_facts(PERFORMANCE_MD)
            partial = f"{', '.join(args.names)} re-measured at {facts['date']}"
            partial += f" (load {facts['load average (1/5/15 min) at start']})"
            if old_facts:
                command, facts = old_command or command, old_facts
                if "partial update" in old_facts:
                    partial = f"{old_facts['partial update']}; {partial}"
            facts["partial update"] = partial
        block = render_report(rows, facts, command=command, table=table)
        write_performance(PERFORMANCE_MD, block)
        print(f"\n(written to {PERFORMANCE_MD.relative_to(REPO)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
