"""docs/operations.md keeps up with the code: every metric and doctor check is documented."""

from __future__ import annotations

from types import SimpleNamespace

from agentd.commands.doctor import CHECKS
from agentd.metrics import AgentMetrics
from tests.packaging.pkgkit import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text()


def test_every_metric_series_is_documented() -> None:
    """Each series the agent exports has a row in the metrics table."""
    agent = SimpleNamespace(store=None, started_at=0.0, executor=None, scheduler=None, jobs={})
    names = [line.split()[2] for line in AgentMetrics(agent).registry.render().splitlines()
             if line.startswith("# TYPE ")]  # fmt: skip
    missing = [n for n in names if f"`{n}" not in DOC]
    assert not missing, f"undocumented series: {missing}"


def test_every_doctor_check_is_documented() -> None:
    """Each doctor check is named in the doctor section."""
    missing = [name for name in CHECKS if f"`{name}`" not in DOC]
    assert not missing, f"undocumented doctor checks: {missing}"


def test_the_walkthrough_covers_the_issue() -> None:
    """Install, console, upgrade, backup/restore with epoch, rotation and revocation are there."""
    for heading in ("Install on 10 servers", "Add them to a console", "Upgrade",
                    "Back up and restore", "What the epoch does then",
                    "Rotate the agent's certificate", "Revoke an operator key"):  # fmt: skip
        assert heading in DOC, heading
