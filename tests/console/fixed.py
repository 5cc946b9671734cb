"""Fixed data for console tests and snapshots: four agents, four jobs, fifty runs.

Everything is derived from ``NOW`` (2027-01-15 08:00 UTC) so screens are
identical on every run. This is test data, not a stand-in for a component:
the real links implement the same ``FleetSource`` interface.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from console.app import SquApp
from console.fleet.mirror import Mirror
from console.fleet.source import AgentState, HostMetrics, LinkState, LogPiece, StaticFleet
from console.theme import TuiConfig
from shared.enums import ExecutionStatus, Trigger
from shared.ids import scheduled_execution_id
from shared.models import Execution, Job, JobRecord, Parameter

NOW = 1_800_000_000.0

AGENTS = [
    AgentState(
        name="db1", url="wss://db1:7443", link=LinkState.UP, since=NOW - 86400, version="0.1.0",
        timezone="Europe/Paris", last_seen=NOW - 2,
        metrics=HostMetrics(load=(0.42, 0.5, 0.61), cpu_pct=12, mem_pct=48, disk_pct=71,
                            running=1, containment="cgroup"),
    ),
    AgentState(
        name="web1", url="wss://web1:7443", link=LinkState.UP, since=NOW - 7200, version="0.1.0",
        timezone="UTC", last_seen=NOW - 1,
        metrics=HostMetrics(load=(1.8, 1.2, 0.9), cpu_pct=64, mem_pct=33, disk_pct=40,
                            running=2, containment="pgroup"),
    ),
    AgentState(
        name="web2", url="wss://web2:7443", link=LinkState.DOWN, since=NOW - 3600,
        version="0.1.0", timezone="UTC", last_seen=NOW - 3700, error="connection refused",
        metrics=HostMetrics(load=(0.1, 0.1, 0.1), cpu_pct=3, mem_pct=20, disk_pct=88,
                            running=0, containment="cgroup"),
    ),
    AgentState(
        name="edge1", url="wss://edge1:7443", link=LinkState.AUTH_FAILED, since=NOW - 600,
        error="operator key not in authorized_operators",
    ),
]  # fmt: skip

JOBS: list[tuple[str, Job, str]] = [
    (
        "db1",
        Job(
            name="backup-db",
            command="pg_dump main | gzip > /backup/main.sql.gz",
            description="Nightly dump of the main database",
            cron="30 2 * * *",
            timezone="Europe/Paris",
            timeout_s=3600,
            parameters=(
                Parameter(name="target", default="s3"),
                Parameter(name="full", type="bool", default=False),
            ),
        ),
        "console",
    ),
    ("web1", Job(name="rotate-logs", command="logrotate /etc/lr.conf", cron="0 * * * *"), "file"),
    ("web2", Job(name="rotate-logs", command="logrotate /etc/lr.conf", cron="0 * * * *"), "file"),
    ("db1", Job(name="report", command="make-report", description="Weekly report"), "console"),
    ("web1", Job(name="report", command="make-report", description="Weekly report"), "console"),
    (
        "web1",
        Job(name="cleanup-tmp", command="find /tmp -mtime +7 -delete", cron="*/15 * * * *",
            enabled=False),
        "console",
    ),
]  # fmt: skip

FILE_SOURCE = "file:/etc/squ-agentd/jobs.d/logs.toml"

HOSTILE_TAIL = "warning: \x1b[31mdisk 88%\x1b[0m\n"

_STATUSES = ["success", "success", "failed", "success", "timeout", "success", "success", "lost"]


def executions() -> list[tuple[str, Execution]]:
    """Fifty runs across the jobs, the newest a running rotate-logs on web1."""
    out: list[tuple[str, Execution]] = []
    plan = [("db1", "backup-db", 86400.0), ("web1", "rotate-logs", 3600.0),
            ("web2", "rotate-logs", 3600.0), ("db1", "report", 7 * 86400.0)]  # fmt: skip
    n = 0
    for agent, job, step in plan:
        for i in range(12 if job != "report" else 14):
            at = NOW - 60 - i * step
            status = _STATUSES[(i + n) % len(_STATUSES)]
            if agent == "web1" and i == 0:
                status = "running"
            finished = status != "running"
            took = 1000 * (30 + (i * 37 + n * 11) % 90)
            ex_id = scheduled_execution_id(job, at)
            out.append(
                (
                    agent,
                    Execution(
                        id=ex_id, job=job, server=agent, run_id=ex_id,
                        trigger=Trigger.SCHEDULE if job != "report" else Trigger.MANUAL,
                        status=ExecutionStatus(status), seq=len(out) + 1, scheduled_for=at,
                        created_at=at, started_at=at + 0.004,
                        finished_at=at + took / 1000 if finished else None,
                        duration_ms=took if finished else None,
                        exit_code=(0 if status == "success" else 1) if finished else None,
                        stdout_tail=f"{job}: step 3/3 done\n",
                        stderr_tail="" if status == "success" else HOSTILE_TAIL,
                        log_bytes=2048 + i, triggered_by="ops" if job == "report" else "",
                    ),
                )
            )  # fmt: skip
        n += 1
    return out


def build_mirror(path: Path) -> Mirror:
    mirror = Mirror.open(path)
    for agent in ("db1", "web1", "web2"):
        rows = [ex for a, ex in executions() if a == agent]
        mirror.upsert_executions(agent, f"epoch-{agent}", rows, next_seq=len(rows), now=NOW)
        records = [
            JobRecord(job=job, version=3, source=FILE_SOURCE if src == "file" else "console",
                      definition_hash="", created_at=NOW - 86400 * 30, updated_at=NOW - 86400)
            for a, job, src in JOBS if a == agent
        ]  # fmt: skip
        mirror.put_jobs(agent, records, replace_all=True)
    return mirror


def last_backup_id() -> str:
    return next(ex.id for a, ex in executions() if ex.job == "backup-db")


def fleet() -> StaticFleet:
    logs = {
        last_backup_id(): [
            LogPiece(stream="stdout", data=b"starting dump of main\n"),
            LogPiece(stream="stdout", data=b"\x1b]0;pwned\x07dumped 1200 tables\n"),
            LogPiece(stream="dropped", dropped_bytes=5 * 1024 * 1024),
            LogPiece(stream="stderr", data=b"warning: slow disk\n"),
            LogPiece(stream="stdout", data=b"upload to s3 done [bold]not markup[/bold]\n"),
        ]
    }
    return StaticFleet(states=list(AGENTS), logs=logs, now=lambda: NOW)


def make_app(tmp_path: Path, *, theme: str = "squ-dark") -> SquApp:
    mirror = build_mirror(tmp_path / "mirror.db")
    config = TuiConfig(theme=theme, tz=UTC, cursor_blink=False)
    return SquApp(mirror, fleet(), clock=lambda: NOW, config=config)
