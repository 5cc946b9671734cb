"""shared/alerts: which change raises which alert, routing, rate limit, body, signature."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import pytest

from shared import alerts as rules
from shared.alerts import Alert, Pending, RateLimit
from shared.enums import AlertKind, ExecutionStatus, Trigger
from shared.models import AlertPolicy, Execution, Job, RetryPolicy

T0 = 1_790_000_000.0
S = ExecutionStatus


def _ex(
    status: S, *, retry_index: int = 0, trigger: Trigger = Trigger.SCHEDULE, **kw: object
) -> Execution:
    return Execution(
        id="01EX",
        job="backup",
        server="db1",
        run_id="01RUN",
        trigger=trigger,
        status=status,
        created_at=T0,
        retry_index=retry_index,
        **kw,  # type: ignore[arg-type]
    )


JOB = Job(name="backup", command="true", retry=RetryPolicy(count=2))
RUNNING = _ex(S.RUNNING)


@pytest.mark.parametrize(
    ("after", "job", "was_failing", "kinds"),
    [
        (_ex(S.FAILED), Job(name="backup", command="true"), False, [AlertKind.FAILED]),
        (_ex(S.TIMEOUT), Job(name="backup", command="true"), False, [AlertKind.TIMED_OUT]),
        (_ex(S.FAILED), JOB, False, [AlertKind.RETRYING]),
        (_ex(S.TIMEOUT, retry_index=1), JOB, True, [AlertKind.RETRYING]),
        (_ex(S.FAILED, retry_index=2), JOB, True, [AlertKind.RETRIES_EXHAUSTED]),
        (_ex(S.FAILED, trigger=Trigger.API), JOB, False, [AlertKind.FAILED]),
        (_ex(S.SUCCESS), JOB, True, [AlertKind.RECOVERED]),
        (_ex(S.SUCCESS), JOB, False, []),
        (_ex(S.LOST), JOB, False, [AlertKind.LOST]),
        (_ex(S.CANCELLED), JOB, False, []),
        (_ex(S.SKIPPED, reason="concurrency=forbid: busy"), JOB, False, [AlertKind.SKIPPED]),
        (
            _ex(S.SKIPPED, reason=rules.MISSED_REASON + " (misfire = skip)"),
            JOB,
            False,
            [AlertKind.MISSED],
        ),
    ],
)
def test_alerts_for_each_final_status(
    after: Execution, job: Job, was_failing: bool, kinds: list[AlertKind]
) -> None:
    """Each final status raises its documented alert kind (or none)."""
    assert rules.alerts_for(RUNNING, after, job=job, was_failing=was_failing) == kinds


def test_same_status_change_raises_nothing() -> None:
    """A change that keeps the status (tails, pid) raises no alert."""
    failed = _ex(S.FAILED)
    assert rules.alerts_for(failed, failed, job=None, was_failing=False) == []


def test_failing_flag_follows_final_statuses() -> None:
    """Failures set the job's failing flag, a success clears it, a skip keeps it."""
    assert rules.is_failing_after(S.LOST, False)
    assert not rules.is_failing_after(S.SUCCESS, True)
    assert rules.is_failing_after(S.SKIPPED, True)


def test_alert_record_says_attempt_n_of_m() -> None:
    """A retrying alert carries the attempt number and the run's attempts in all."""
    alert = rules.alert_from_execution(
        _ex(S.FAILED, retry_index=1, exit_code=3), AlertKind.RETRYING, job=JOB, now=T0
    )
    assert (alert.attempt, alert.attempts, alert.id) == (2, 3, "01EX.retrying")
    assert "attempt 2 of 3" in rules.summary(alert)


def test_long_running_threshold_takes_the_lower_limit() -> None:
    """The threshold is the lower of long_running_s and factor x median."""
    policy = AlertPolicy(long_running_s=100.0, long_running_factor=3.0)
    assert (
        rules.long_running_threshold_s(
            policy, default_factor=None, recent_durations_ms=[10_000] * 5
        )
        == 30.0
    )
    assert (
        rules.long_running_threshold_s(
            policy, default_factor=None, recent_durations_ms=[10_000] * 4
        )
        == 100.0
    )


def test_long_running_without_limits_is_never() -> None:
    """No threshold and no default factor: never long-running."""
    assert (
        rules.long_running_threshold_s(None, default_factor=None, recent_durations_ms=[1] * 9)
        is None
    )


def test_routing_uses_job_overrides_then_agent_defaults() -> None:
    """A job's channels and kinds override the agent's; [] notifies nobody."""
    assert rules.channels_for(AlertKind.FAILED, None, default_channels=["ops"]) == ("ops",)
    policy = AlertPolicy(channels=("pager",), on=(AlertKind.FAILED,))
    assert rules.channels_for(AlertKind.FAILED, policy, default_channels=["ops"]) == ("pager",)
    assert rules.channels_for(AlertKind.SKIPPED, policy, default_channels=["ops"]) == ()
    assert (
        rules.channels_for(AlertKind.FAILED, AlertPolicy(channels=()), default_channels=["ops"])
        == ()
    )


def test_email_recipients_fall_back_to_crontab_mailto() -> None:
    """email_to, else the crontab's mailto label, else the channel's own list."""
    assert rules.email_recipients(None, {"mailto": "a@x, b@x"}, ["ops@x"]) == ("a@x", "b@x")
    assert rules.email_recipients(AlertPolicy(email_to=("c@x",)), {"mailto": "a@x"}, []) == ("c@x",)
    assert rules.email_recipients(None, {}, ["ops@x"]) == ("ops@x",)


def _alert(n: int, job: str = "backup") -> Alert:
    return Alert(
        id=f"E{n}.failed", kind=AlertKind.FAILED, job=job, server="db1", execution_id=f"E{n}",
        run_id=f"E{n}", status=S.FAILED, created_at=T0 + n,
    )  # fmt: skip


def test_rate_limited_job_waits_then_sends_one_digest() -> None:
    """At its limit a job sends nothing; the next message carries every held alert."""
    pending = [Pending(delivery_id=n, channel="ops", alert=_alert(n)) for n in range(5)]
    limit = RateLimit(burst=3, window_s=300)
    assert rules.plan_messages(pending, {("ops", "backup"): 3}, limit) == []
    (digest,) = rules.plan_messages(pending, {("ops", "backup"): 2}, limit)
    assert digest.is_digest and digest.delivery_ids == (0, 1, 2, 3, 4)


def test_jobs_are_rate_limited_separately() -> None:
    """One noisy job does not hold back another job's alert."""
    pending = [
        Pending(delivery_id=1, channel="ops", alert=_alert(1)),
        Pending(delivery_id=2, channel="ops", alert=_alert(2, "other")),
    ]
    (message,) = rules.plan_messages(pending, {("ops", "backup"): 3}, RateLimit())
    assert message.job == "other" and not message.is_digest


def test_body_shape_is_documented() -> None:
    """The body has the documented keys, ISO times and one entry per alert."""
    message = rules.plan_messages(
        [Pending(delivery_id=1, channel="ops", alert=_alert(1))], {}, RateLimit()
    )[0]
    body = rules.message_body(message, agent="db1", message_id="m1", now=T0)
    assert body["type"] == "alert" and body["count"] == 1 and body["version"] == 1
    assert body["alerts"][0]["created_at"] == "2026-09-21T14:13:21.000+00:00"
    assert set(body["alerts"][0]) == {
        "id", "kind", "job", "server", "execution_id", "run_id", "status", "attempt", "attempts",
        "exit_code", "signal", "duration_ms", "scheduled_for", "created_at", "reason", "summary",
    }  # fmt: skip
    msgspec.json.encode(body)


def test_signature_is_hmac_sha256_of_the_body() -> None:
    """X-Squ-Signature is sha256=<hex HMAC-SHA256 of the exact body bytes>."""
    expected = hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert rules.sign_body(b"{}", "k") == f"sha256={expected}"


def test_retry_delay_doubles_and_is_capped() -> None:
    """Delivery retries back off 5, 10, 20 ... seconds up to the cap."""
    assert [rules.retry_delay_s(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert rules.retry_delay_s(40) == 600.0
