"""The sample jobs in packaging/demo-jobs (reused by `squ demo`) stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.jobs import parse_jobs_toml

DEMO = Path(__file__).resolve().parents[2] / "packaging" / "demo-jobs"


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.toml")), ids=lambda p: p.name)
def test_demo_file_parses(path: Path) -> None:
    """Each demo file parses into at least one valid job."""
    assert parse_jobs_toml(path.read_text(), where=str(path))


def test_demo_covers_the_promised_kinds() -> None:
    """The demo set has a frequent, a retried, a long, a parameterised and an approval job."""
    jobs = [
        j for p in sorted(DEMO.glob("*.toml")) for j in parse_jobs_toml(p.read_text(), where=str(p))
    ]
    assert any(j.cron and j.cron.startswith("*/5") for j in jobs)
    assert any(j.retry.count >= 2 for j in jobs)
    assert any(j.timeout_s and j.timeout_s >= 60 and j.cron for j in jobs)
    assert any(j.parameters and j.cron is None for j in jobs)
    assert any(j.approval == "manual" and j.is_manual_only for j in jobs)
