"""What every benchmark shares: the result row, the run context, statistics.

A benchmark module ``bench/bench_<name>.py`` exposes ``run(ctx) -> list[Row]``.
The runner (``bench/__main__.py``) calls it in a child process with a hard time
bound, collects the rows as JSON and renders the table.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "NOT_BUILT",
    "NOT_MEASURED",
    "BenchError",
    "Context",
    "NotBuilt",
    "Row",
    "fmt_mib",
    "fmt_ms",
    "fmt_rate",
    "judge_max",
    "judge_min",
    "percentile",
    "ratio",
]

# Shown in the squ-cron column while the piece it needs has not landed yet:
# a row without a number is honest, a made-up number is not.
NOT_BUILT = "not built yet"
NOT_MEASURED = "not measured"


class BenchError(Exception):
    """A benchmark could not measure what it set out to (the note says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the results table.

    ``ratio`` is squ-cron over the reference measured in the same run (so a
    lag ratio of 1.2 means 20 % slower than the floor, a rate ratio of 0.8
    means 80 % of the reference's rate). ``passed`` is None when there is
    nothing to judge yet ("n/a").
    """

    metric: str
    squ: str
    reference: str
    ratio: float | None
    goal: str
    passed: bool | None
    note: str = ""

    def __post_init__(self) -> None:
        # "not built yet" is only for a missing piece (NotBuilt says "needs ..."); a squ-cron
        # side that exists but could not be measured this time says so instead.
        if self.squ == NOT_BUILT and self.note and not self.note.startswith("needs "):
            object.__setattr__(self, "squ", NOT_MEASURED)

    @classmethod
    def not_built(cls, metric: str, *, reference: str, goal: str, note: str = "") -> Row:
        """A row whose squ-cron side cannot be measured yet (pass = n/a)."""
        return cls(
            metric=metric,
            squ=NOT_BUILT,
            reference=reference,
            ratio=None,
            goal=goal,
            passed=None,
            note=note,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        return cls(**{f.name: data.get(f.name, "") for f in dataclasses.fields(cls)})


@dataclass(slots=True)
class Context:
    """What a benchmark gets from the runner.

    ``quick`` asks for the smaller variant; ``deadline`` is the monotonic
    instant at which the runner kills the benchmark, so long loops should stop
    early with ``time_left()``; ``work_dir`` is scratch space removed afterwards.
    """

    quick: bool = False
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="squ-bench-")))
    deadline: float = field(default_factory=lambda: time.monotonic() + 600.0)
    verbose: bool = True

    def pick(self, full: Any, quick: Any) -> Any:
        """The full-size value, or the quick one under ``--quick``."""
        return quick if self.quick else full

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, message: str) -> None:
        """Progress on stderr (the rows travel on stdout)."""
        if self.verbose:
            print(f"  · {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        """A fresh empty directory under the work dir."""
        path = self.work_dir / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 30 samples is the largest one)."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def ratio(squ: float | None, reference: float | None) -> float | None:
    """squ over reference, or None when either side is missing or zero."""
    if squ is None or reference is None or reference == 0:
        return None
    return squ / reference


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def fmt_rate(per_s: float, unit: str = "/s") -> str:
    if per_s >= 10_000:
        return f"{per_s / 1000:,.0f}k{unit}"
    return f"{per_s:,.0f}{unit}"


def fmt_mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MiB"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


class NotBuilt(BenchError):
    """The squ-cron piece a measurement needs has not landed yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"needs {what}")
        self.what = what


def judge_max(value: float | None, limit: float) -> bool | None:
    """Pass when ``value`` is at most ``limit`` (None when unmeasured)."""
    return None if value is None else value <= limit


def judge_min(value: float | None, limit: float) -> bool | None:
    """Pass when ``value`` is at least ``limit`` (None when unmeasured)."""
    return None if value is None else value >= limit
