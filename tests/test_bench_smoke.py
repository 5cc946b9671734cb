"""bench/ cannot silently rot: every module imports, the cheapest references run."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from bench.child import read_stamps, shell_argv, stamp_command
from bench.core import Row, percentile, ratio
from bench.refs.spawn import spawn_rate
from bench.refs.sqlite import batched_insert_rate
from bench.registry import BENCHMARKS
from bench.report import (
    BEGIN,
    END,
    merged_table,
    recorded_facts,
    render_report,
    render_table,
    write_performance,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("bench", BENCHMARKS, ids=lambda b: b.name)
def test_every_benchmark_module_imports_and_has_run(bench: object) -> None:
    """Each registered benchmark module imports and exposes run(ctx)."""
    module = importlib.import_module(bench.module)  # type: ignore[attr-defined]
    assert callable(module.run)


def test_stamp_child_records_its_start_time(tmp_path: Path) -> None:
    """The stamp child appends a wall-clock time close to when it was spawned."""
    import time

    stamps = tmp_path / "s"
    before = time.time()
    subprocess.run(shell_argv(stamp_command(stamps)), check=True, timeout=10)
    (stamp,) = read_stamps(stamps)
    assert before <= stamp <= time.time()


def test_raw_spawn_rate_reference_runs() -> None:
    """The raw spawn reference reaps every child and reports a positive rate."""
    assert spawn_rate("true", 10, in_flight=4) > 0


def test_raw_sqlite_reference_runs(tmp_path: Path) -> None:
    """The raw sqlite3 reference inserts rows and leaves no database behind."""
    assert batched_insert_rate(tmp_path, 2000, batch=500) > 0
    assert list(tmp_path.iterdir()) == []


def test_percentile_is_nearest_rank() -> None:
    """p99 of 30 samples is the largest one; p50 is the middle one."""
    values = [float(v) for v in range(1, 31)]
    assert percentile(values, 99) == 30.0
    assert percentile(values, 50) == 15.0


def test_ratio_is_none_without_a_reference() -> None:
    """A missing or zero reference gives no ratio rather than a fake one."""
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None


def test_unbuilt_row_is_not_judged() -> None:
    """A row whose squ-cron side is missing renders as not built with pass n/a."""
    row = Row.not_built("x", reference="1 ms", goal="<= 2 ms")
    table = render_table([row])
    assert "| x | not built yet | 1 ms |  | <= 2 ms | n/a |" in table


def test_performance_page_keeps_hand_written_text(tmp_path: Path) -> None:
    """Regenerating the table replaces only the block between the markers."""
    page = tmp_path / "performance.md"
    page.write_text(f"# P\n\nintro\n\n{BEGIN}\nold\n{END}\n\nanalysis\n")
    write_performance(page, f"{BEGIN}\nnew\n{END}")
    assert page.read_text() == f"# P\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nanalysis\n"


def test_runner_lists_every_benchmark() -> None:
    """``python -m bench --list`` names every registered benchmark."""
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert all(b.name in out for b in BENCHMARKS)


def test_unmeasured_row_is_not_called_unbuilt() -> None:
    """A squ-cron side that exists but failed this run reads "not measured", not "not built"."""
    row = Row.not_built("x", reference="1 ms", goal="<= 2 ms", note="the agent took too long")
    assert row.squ == "not measured"
    assert Row.not_built("y", reference="-", goal="-", note="needs agentd.server").squ == (
        "not built yet"
    )


def test_partial_write_keeps_the_other_rows(tmp_path: Path) -> None:
    """Re-measuring one benchmark replaces its rows and keeps every other row."""
    page = tmp_path / "performance.md"
    a = Row(metric="a", squ="1", reference="1", ratio=1.0, goal="g", passed=True)
    b = Row(metric="b", squ="2", reference="2", ratio=1.0, goal="g", passed=True)
    write_performance(page, render_report([a, b], {}, command="all"))
    b2 = Row(metric="b", squ="3", reference="2", ratio=1.5, goal="g", passed=False)
    table = merged_table(page, [b2])
    assert table.splitlines()[2:] == render_table([a, b2]).splitlines()[2:]


def test_recorded_facts_read_back() -> None:
    """The machine facts written with a run are read back unchanged (for partial updates)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "performance.md"
        facts = {"cores": "2 usable (2 online)", "total run time": "485 s"}
        write_performance(page, render_report([], facts, command="python -m bench"))
        assert recorded_facts(page) == ("python -m bench", facts)
