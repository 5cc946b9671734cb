"""Frozen records shared by agent, console and wire.

Definitions are ``msgspec.Struct``s so that the same type validates a
``jobs.d`` TOML file, a ``squ apply`` file and a wire message. Semantic checks
that need more than types (cron syntax, time zones, env names) live in
``shared.jobs.parse_job``, which is the one entry point for untrusted input.
"""

from __future__ import annotations

import msgspec

from shared.enums import (
    AlertKind,
    Approval,
    Backoff,
    Concurrency,
    ExecutionStatus,
    Misfire,
    RetryOn,
    Trigger,
)

__all__ = [
    "AlertPolicy",
    "Execution",
    "Job",
    "JobRecord",
    "Parameter",
    "RetryPolicy",
]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a failed run is tried again; each retry is a new execution with the same run id."""

    count: int = 0
    delay_s: float = 10.0
    backoff: Backoff = Backoff.FIXED
    max_delay_s: float = 3600.0
    # Fraction of the delay added at random (0.1 = up to +10%), so a fleet does not retry in step.
    jitter: float = 0.1
    on: tuple[RetryOn, ...] = (RetryOn.FAILED, RetryOn.TIMEOUT)


class AlertPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A job's alerting overrides (docs/alerts.md); ``None`` fields take the agent's defaults."""

    # Names of channels from agentd.toml [alerts.channel.*]; None: the agent's default
    # channels; an empty list: this job sends no notifications (alerts are still recorded).
    channels: tuple[str, ...] | None = None
    # Which alert kinds notify; None: every kind.
    on: tuple[AlertKind, ...] | None = None
    # Long-running: past this many seconds, or past this factor of the recent median.
    long_running_s: float | None = None
    long_running_factor: float | None = None
    # Recipients for email channels; empty: the channel's own (or the crontab's MAILTO label).
    email_to: tuple[str, ...] = ()


class Parameter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A typed job parameter, passed to the process as ``SQU_PARAM_<NAME>``."""

    name: str
    type: str = "str"  # str | int | float | bool | choice
    default: str | int | float | bool | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    description: str = ""


class Job(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A job's definition: what the operator writes. Metadata lives in ``JobRecord``."""

    name: str
    command: str | None = None
    script: str | None = None  # "name@sha256:<hex>"
    interpreter: str = "/bin/sh"
    description: str = ""
    targets: tuple[str, ...] = ()
    cron: str | None = None
    at: str | None = None  # one-shot ISO 8601 time
    timezone: str | None = None  # None: the agent's zone
    timeout_s: float | None = None
    kill_grace_s: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    concurrency: Concurrency = Concurrency.FORBID
    misfire: Misfire = Misfire.RUN_ONCE
    misfire_grace_s: float = 3600.0
    enabled: bool = True
    approval: Approval = Approval.NONE
    env: dict[str, str] = {}
    parameters: tuple[Parameter, ...] = ()
    user: str | None = None
    group: str | None = None
    working_dir: str | None = None
    max_log_bytes: int = 10 * 1024 * 1024
    labels: dict[str, str] = {}
    idempotent: bool = False
    alerts: AlertPolicy | None = None

    @property
    def is_manual_only(self) -> bool:
        return self.cron is None and self.at is None


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A job as an agent stores it: the definition plus who changed it, when, and from where."""

    job: Job
    version: int
    source: str  # "console" or "file:/etc/squ-agentd/jobs.d/backup.toml"
    definition_hash: str
    created_at: float
    updated_at: float
    updated_by: str = ""


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to run a job on one server; retries are new executions with the same run_id."""

    id: str
    job: str
    server: str
    run_id: str
    trigger: Trigger
    status: ExecutionStatus
    seq: int = 0
    scheduled_for: float | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    retry_index: int = 0
    pid: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    log_bytes: int = 0
    log_dropped_bytes: int = 0
    cpu_time_s: float | None = None
    peak_rss_kb: int | None = None
    triggered_by: str = ""
    approved_by: str = ""
    params: dict[str, str] = {}
    reason: str = ""  # why skipped / lost / failed to start, in words
