"""Alerts, pure: which state change raises which alert, who hears it, how often, in what body.

The agent's store calls ``alerts_for`` inside the transaction that changes an
execution, so an alert is committed with the change that caused it (issue 5:
"written to the store in the same transaction"). The delivery loop then calls
``channels_for`` (routing), ``plan_messages`` (per-job rate limit: a job that
fails every second sends a digest, not a flood), ``message_body`` (the
documented JSON body, docs/alerts.md) and ``retry_delay_s`` (backoff of a
failed delivery). Nothing here does I/O; time is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import msgspec

from shared.enums import AlertKind, ExecutionStatus, RetryOn, Trigger
from shared.models import AlertPolicy, Execution, Job

__all__ = [
    "BODY_VERSION",
    "MISSED_REASON",
    "Alert",
    "AlertAck",
    "AlertsBatch",
    "AlertsQuery",
    "AlertsResult",
    "AlertsSince",
    "Delivery",
    "Message",
    "Pending",
    "RateLimit",
    "alert_from_execution",
    "alert_id",
    "alert_json",
    "alerts_for",
    "channels_for",
    "command_env",
    "email_recipients",
    "is_failing_after",
    "long_running_threshold_s",
    "message_body",
    "plan_messages",
    "retry_delay_s",
    "sign_body",
    "summary",
    "will_retry",
]

BODY_VERSION = 1
# The scheduler's reason for a tick missed while the agent was down (agentd/scheduler.py):
# such a skipped row raises ``missed``; any other skip raises ``skipped``.
MISSED_REASON = "missed while the agent was not running"
# The median of fewer runs than this says too little about a job's usual duration.
MIN_MEDIAN_SAMPLES = 5

_RETRY_ON = {ExecutionStatus.FAILED: RetryOn.FAILED, ExecutionStatus.TIMEOUT: RetryOn.TIMEOUT}
_FAILING = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT, ExecutionStatus.LOST})


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One channel's delivery of one alert, as recorded: visible to operators."""

    channel: str
    state: str  # pending | sent | failed (gave up) | dropped (channel no longer configured)
    attempts: int = 0
    last_error: str = ""
    sent_at: float | None = None
    next_attempt_at: float | None = None


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as the agent stores and syncs it; ``id`` is ``<execution id>.<kind>``."""

    id: str
    kind: AlertKind
    job: str
    server: str
    execution_id: str
    run_id: str
    status: ExecutionStatus
    created_at: float
    seq: int = 0
    attempt: int = 1  # 1 = the first run, 2 = its first retry, ...
    attempts: int = 1  # the run's attempts in all: 1 + retry.count
    exit_code: int | None = None
    signal: int | None = None
    duration_ms: int | None = None
    scheduled_for: float | None = None
    reason: str = ""
    acked_at: float | None = None
    acked_by: str = ""
    deliveries: tuple[Delivery, ...] = ()


def alert_id(execution_id: str, kind: AlertKind) -> str:
    """The one id of ``kind`` about one execution: the key that makes an alert happen once."""
    return f"{execution_id}.{kind.value}"


# --------------------------------------------------------------------------- what fires


def will_retry(job: Job | None, ex: Execution) -> bool:
    """Whether the executor follows this final ``ex`` with a retry (mirrors ``_retry_row``)."""
    if job is None or ex.trigger is Trigger.API:
        return False
    reason = _RETRY_ON.get(ex.status)
    return reason is not None and reason in job.retry.on and ex.retry_index < job.retry.count


def alerts_for(
    before: Execution | None, after: Execution, *, job: Job | None, was_failing: bool
) -> list[AlertKind]:
    """The alert kinds the change ``before -> after`` raises (``before`` None: a new row).

    ``was_failing``: the job's last final status before this one was a failure
    (failed, timeout, lost), so a success now is a recovery. A change that
    keeps the status (tails, pid) raises nothing.
    """
    if before is not None and before.status is after.status:
        return []
    status = after.status
    if status in (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT):
        if will_retry(job, after):
            return [AlertKind.RETRYING]
        if after.retry_index > 0:
            return [AlertKind.RETRIES_EXHAUSTED]
        return [AlertKind.FAILED if status is ExecutionStatus.FAILED else AlertKind.TIMED_OUT]
    if status is ExecutionStatus.LOST:
        return [AlertKind.LOST]
    if status is ExecutionStatus.SKIPPED:
        missed = after.reason.startswith(MISSED_REASON)
        return [AlertKind.MISSED if missed else AlertKind.SKIPPED]
    if status is ExecutionStatus.SUCCESS and was_failing:
        return [AlertKind.RECOVERED]
    return []


def is_failing_after(status: ExecutionStatus, was_failing: bool) -> bool:
    """The job's failing flag after an execution reaches ``status``."""
    if status in _FAILING:
        return True
    if status is ExecutionStatus.SUCCESS:
        return False
    return was_failing


def alert_from_execution(ex: Execution, kind: AlertKind, *, job: Job | None, now: float) -> Alert:
    """The alert record of ``kind`` about ``ex`` (its status, attempt, exit, reason)."""
    reason = ex.reason
    if kind is AlertKind.LONG_RUNNING and ex.started_at is not None:
        reason = f"running for {now - ex.started_at:.0f} s"
    return Alert(
        id=alert_id(ex.id, kind),
        kind=kind,
        job=ex.job,
        server=ex.server,
        execution_id=ex.id,
        run_id=ex.run_id,
        status=ex.status,
        created_at=now,
        attempt=ex.retry_index + 1,
        attempts=1 + (job.retry.count if job is not None else ex.retry_index),
        exit_code=ex.exit_code,
        signal=ex.signal,
        duration_ms=ex.duration_ms,
        scheduled_for=ex.scheduled_for,
        reason=reason,
    )


def long_running_threshold_s(
    policy: AlertPolicy | None,
    *,
    default_factor: float | None,
    recent_durations_ms: Sequence[int],
) -> float | None:
    """Seconds after which a running execution of the job is long-running, or None (never).

    The lower of the job's ``long_running_s`` and ``factor`` times the median of
    its recent successful durations (needs ``MIN_MEDIAN_SAMPLES`` of them).
    """
    limits: list[float] = []
    if policy is not None and policy.long_running_s is not None:
        limits.append(policy.long_running_s)
    factor = policy.long_running_factor if policy is not None else None
    factor = factor if factor is not None else default_factor
    if factor is not None and len(recent_durations_ms) >= MIN_MEDIAN_SAMPLES:
        import statistics  # here, not at import: an idle agent never needs it (issue 8)

        median_s = statistics.median(recent_durations_ms) / 1000
        # A job that usually takes a few ms is not "long" at 3 ms: one second at the least.
        limits.append(max(factor * median_s, 1.0))
    return min(limits) if limits else None


# --------------------------------------------------------------------------- routing


def channels_for(
    kind: AlertKind,
    policy: AlertPolicy | None,
    *,
    default_channels: Sequence[str],
    default_on: Iterable[AlertKind] | None = None,
) -> tuple[str, ...]:
    """The channels an alert of ``kind`` goes to: the job's overrides, else the agent's."""
    on = policy.on if policy is not None and policy.on is not None else default_on
    if on is not None and kind not in set(on):
        return ()
    if policy is not None and policy.channels is not None:
        return tuple(policy.channels)
    return tuple(default_channels)


def email_recipients(
    policy: AlertPolicy | None, labels: Mapping[str, str], channel_to: Sequence[str]
) -> tuple[str, ...]:
    """Who an email channel writes to: the job's ``email_to``, its crontab MAILTO, the channel's."""
    if policy is not None and policy.email_to:
        return tuple(policy.email_to)
    mailto = labels.get("mailto", "").strip()
    if mailto:
        return tuple(a.strip() for a in mailto.split(",") if a.strip())
    return tuple(channel_to)


# --------------------------------------------------------------------------- rate limit


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """At most ``burst`` messages per job and channel in any ``window_s``; the rest wait."""

    burst: int = 3
    window_s: float = 300.0


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery due now: its row id, its channel and its alert."""

    delivery_id: int
    channel: str
    alert: Alert


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """What one send carries: one alert, or a digest of several of one job."""

    channel: str
    job: str
    delivery_ids: tuple[int, ...]
    alerts: tuple[Alert, ...]

    @property
    def is_digest(self) -> bool:
        return len(self.alerts) > 1


def plan_messages(
    pending: Sequence[Pending], sent_recently: Mapping[tuple[str, str], int], limit: RateLimit
) -> list[Message]:
    """Group due deliveries into messages, one per (channel, job), within the rate limit.

    ``sent_recently[(channel, job)]`` counts messages sent in the last
    ``limit.window_s``. A group at its limit waits (its alerts pile up); the
    next message it may send carries all of them, as a digest.
    """
    groups: dict[tuple[str, str], list[Pending]] = {}
    for item in pending:
        groups.setdefault((item.channel, item.alert.job), []).append(item)
    out = []
    for (channel, job), items in groups.items():
        if sent_recently.get((channel, job), 0) >= limit.burst:
            continue
        items.sort(key=lambda p: (p.alert.created_at, p.delivery_id))
        out.append(
            Message(
                channel=channel,
                job=job,
                delivery_ids=tuple(p.delivery_id for p in items),
                alerts=tuple(p.alert for p in items),
            )
        )
    return out


def retry_delay_s(attempts: int, *, base_s: float = 5.0, max_s: float = 600.0) -> float:
    """Wait before delivery attempt ``attempts + 1`` after ``attempts`` failed: doubling, capped."""
    return float(min(base_s * 2 ** min(max(attempts - 1, 0), 30), max_s))


# --------------------------------------------------------------------------- the body


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def summary(alert: Alert) -> str:
    """One line for a human: subject of an email, text of a toast."""
    where = f"{alert.job} on {alert.server}"
    detail = ""
    if alert.exit_code is not None:
        detail = f" (exit {alert.exit_code})"
    elif alert.signal:
        detail = f" (signal {alert.signal})"
    text = {
        AlertKind.FAILED: f"{where} failed{detail}",
        AlertKind.TIMED_OUT: f"{where} timed out",
        AlertKind.RETRYING: (
            f"{where} failed{detail} on attempt {alert.attempt} of {alert.attempts}; retrying"
        ),
        AlertKind.RETRIES_EXHAUSTED: (
            f"{where} failed{detail} on its last attempt ({alert.attempt} of {alert.attempts})"
        ),
        AlertKind.RECOVERED: f"{where} succeeded again after failing",
        AlertKind.LOST: f"{where} was lost (the agent could not tell how it ended)",
        AlertKind.SKIPPED: f"{where} was skipped",
        AlertKind.MISSED: f"{where} did not run at its scheduled time (agent down)",
        AlertKind.LONG_RUNNING: f"{where} is running longer than usual",
    }[alert.kind]
    return f"{text}: {alert.reason}" if alert.reason else text


def alert_json(alert: Alert) -> dict[str, Any]:
    """One alert as it appears in a message body (docs/alerts.md, "The JSON body")."""
    return {
        "id": alert.id,
        "kind": alert.kind.value,
        "job": alert.job,
        "server": alert.server,
        "execution_id": alert.execution_id,
        "run_id": alert.run_id,
        "status": alert.status.value,
        "attempt": alert.attempt,
        "attempts": alert.attempts,
        "exit_code": alert.exit_code,
        "signal": alert.signal,
        "duration_ms": alert.duration_ms,
        "scheduled_for": _iso(alert.scheduled_for),
        "created_at": _iso(alert.created_at),
        "reason": alert.reason,
        "summary": summary(alert),
    }


def message_body(message: Message, *, agent: str, message_id: str, now: float) -> dict[str, Any]:
    """The JSON body of one message: the same shape for webhook, command stdin and email."""
    alerts = [alert_json(a) for a in message.alerts]
    if message.is_digest:
        kinds = sorted({a.kind.value for a in message.alerts})
        text = f"{len(alerts)} alerts for {message.job} on {agent}: {', '.join(kinds)}"
    else:
        text = alerts[0]["summary"]
    return {
        "version": BODY_VERSION,
        "type": "digest" if message.is_digest else "alert",
        "agent": agent,
        "job": message.job,
        "message_id": message_id,
        "sent_at": _iso(now),
        "count": len(alerts),
        "summary": text,
        "alerts": alerts,
    }


def sign_body(body: bytes, secret: str) -> str:
    """The ``X-Squ-Signature`` header value: ``sha256=`` + hex HMAC-SHA256 of the body bytes."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def command_env(body: Mapping[str, Any]) -> dict[str, str]:
    """``SQU_ALERT_*`` variables for the command channel (the full body is on stdin)."""
    first = body["alerts"][0]
    return {
        "SQU_ALERT_TYPE": str(body["type"]),
        "SQU_ALERT_COUNT": str(body["count"]),
        "SQU_ALERT_AGENT": str(body["agent"]),
        "SQU_ALERT_JOB": str(body["job"]),
        "SQU_ALERT_MESSAGE_ID": str(body["message_id"]),
        "SQU_ALERT_SUMMARY": str(body["summary"]),
        "SQU_ALERT_KIND": str(first["kind"]),
        "SQU_ALERT_ID": str(first["id"]),
        "SQU_ALERT_EXECUTION_ID": str(first["execution_id"]),
        "SQU_ALERT_STATUS": str(first["status"]),
    }


# --------------------------------------------------------------------------- wire messages


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class AlertsQuery(_Wire, frozen=True):
    """``alerts.list``: newest first (latest change first), filtered; page with ``before_seq``."""

    job: str | None = None
    kind: AlertKind | None = None
    unacked: bool = False
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    before_seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


class AlertAck(_Wire, frozen=True):
    """``alerts.ack``: acknowledge these alerts (audited; idempotent)."""

    ids: Annotated[tuple[str, ...], msgspec.Meta(min_length=1, max_length=1000)]


class AlertsSince(_Wire, frozen=True):
    """``alerts.since``: every alert changed after ``seq``, oldest change first (sync)."""

    seq: Annotated[int, msgspec.Meta(ge=0)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500


class AlertsResult(_Wire, frozen=True):
    alerts: list[Alert]
    unacked: int  # alerts nobody has acknowledged, on this agent


class AlertsBatch(_Wire, frozen=True):
    """One batch of alerts sync: continue from ``next_seq`` while ``more``.

    ``epoch`` is the store's (a new one: resync from 0). Alerts and
    executions share one seq counter, so a cursor may jump.
    """

    epoch: str
    alerts: list[Alert]
    next_seq: int
    more: bool
    unacked: int
