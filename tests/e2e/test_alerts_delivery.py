"""Alerts end to end: a real squ-agentd, a local HTTP receiver and a local SMTP receiver.

Each event of issue 5 arrives once with the documented body; an alert raised
while the receiver is down arrives once after an agent restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentd.alerts import store as alert_sql
from agentd.daemon import db_path
from agentd.store import open_readonly
from shared.alerts import Alert
from shared.misfire import DUE_TOLERANCE_S
from tests.e2e.agentkit import AgentProc, wait_for
from tests.e2e.alertkit import HttpReceiver, SmtpReceiver

SECRET = "s3cret"


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def _config(agent: AgentProc, hook: HttpReceiver, settings: str = "", extra: str = "") -> None:
    agent.write_config(
        f"""
        [alerts]
        channels = ["hook"]
        poll_s = 0.1
        long_running_check_s = 0.2
        retry_base_s = 0.2
        retry_max_s = 0.5
        {settings}

        [alerts.channel.hook]
        type = "webhook"
        url = "{hook.url}"
        secret = "{SECRET}"
        timeout_s = 2
        {extra}
        """
    )


def _stored_alerts(agent: AgentProc) -> list[Alert]:
    db = open_readonly(db_path(agent.data_dir))
    try:
        return alert_sql.list_alerts(db, limit=1000)
    finally:
        db.close()


def _run(agent: AgentProc, job: str, *, wait: bool = True) -> dict[str, Any]:
    return dict(agent.request("run", {"job": job, "wait": wait}, timeout_s=30))


def test_each_event_arrives_once_with_the_documented_body(
    agent: AgentProc, hook: HttpReceiver
) -> None:
    """failed, timed_out, retrying, retries_exhausted, recovered, skipped, long_running: once."""
    mark = agent.data_dir / "ran-once"
    _config(agent, hook)
    agent.write_jobs(
        "alerting.toml",
        f"""
        [job.fails]
        command = "exit 3"

        [job.slow]
        command = "sleep 5"
        timeout_s = 0.3
        kill_grace_s = 0.2

        [job.flaky]
        command = "exit 1"
        retry = {{ count = 1, delay_s = 0.1 }}

        [job.recovers]
        command = "test -e {mark} || {{ touch {mark}; exit 1; }}"

        [job.busy]
        command = "sleep 2"
        concurrency = "forbid"

        [job.long]
        command = "sleep 1.5"
        alerts = {{ long_running_s = 0.3 }}
        """,
    )
    name = agent.start().request("status")["agent"]
    for job in ("fails", "slow", "flaky", "recovers", "recovers"):
        _run(agent, job)
    _run(agent, "busy", wait=False)
    _run(agent, "busy", wait=False)
    _run(agent, "long")
    expected = {
        "fails": ["failed"],
        "slow": ["timed_out"],
        "flaky": ["retrying", "retries_exhausted"],
        "recovers": ["failed", "recovered"],
        "busy": ["skipped"],
        "long": ["long_running"],
    }
    wait_for(
        lambda: all(hook.kinds(job) == kinds for job, kinds in expected.items()),
        timeout_s=20,
        what=f"alerts {expected}, got {[(a['job'], a['kind']) for a in hook.alerts()]}",
    )
    agent.stop()
    assert {job: hook.kinds(job) for job in expected} == expected
    for headers, raw, body in hook.posts:
        digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Squ-Signature"] == f"sha256={digest}"
        assert body["version"] == 1 and body["agent"] == name
    (retrying,) = [a for a in hook.alerts() if a["kind"] == "retrying"]
    assert (retrying["attempt"], retrying["attempts"]) == (1, 2)
    (failed,) = [a for a in hook.alerts() if a["job"] == "fails"]
    assert failed["exit_code"] == 3 and failed["status"] == "failed"
    # Delivery is recorded and visible on every alert.
    assert all(a.deliveries[0].state == "sent" for a in _stored_alerts(agent))


def test_alert_raised_while_receiver_down_arrives_once_after_restart(
    agent: AgentProc, hook: HttpReceiver
) -> None:
    """An unreachable webhook and an agent restart lose nothing and send nothing twice."""
    _config(agent, hook)
    agent.write_jobs("f.toml", '[job.fails]\ncommand = "exit 7"\n')
    hook.stop()
    agent.start()
    _run(agent, "fails")

    def tried_and_failed() -> bool:
        alerts = _stored_alerts(agent)
        return bool(alerts and alerts[0].deliveries and alerts[0].deliveries[0].attempts >= 2)

    wait_for(tried_and_failed, what="two failed delivery attempts")
    (alert,) = _stored_alerts(agent)
    assert alert.deliveries[0].state == "pending" and alert.deliveries[0].last_error
    agent.stop()
    hook.start()
    agent.start()
    wait_for(lambda: hook.kinds("fails"), what="the alert after the restart")
    agent.stop()
    assert hook.kinds("fails") == ["failed"]
    (alert,) = _stored_alerts(agent)
    assert alert.deliveries[0].state == "sent"


def test_missed_ticks_are_reported_on_start(agent: AgentProc, hook: HttpReceiver) -> None:
    """Ticks that fell while the agent was stopped arrive as missed alerts, once each."""
    _config(agent, hook, "rate_limit_burst = 100")
    agent.write_jobs(
        "tick.toml", '[job.tick]\ncommand = "true"\ncron = "* * * * * *"\nmisfire = "skip"\n'
    )
    agent.start()
    wait_for(lambda: len(agent.executions("tick")) >= 2, what="two ticks")
    agent.stop()
    stopped = time.time()
    # Down across real ticks, longer than the scheduler's 10 s "late but due" tolerance
    # (shared/misfire.py): wait for the clock, not for luck.
    downtime_s = DUE_TOLERANCE_S + 2
    wait_for(lambda: time.time() > stopped + downtime_s, timeout_s=30, every_s=0.5, what="downtime")
    agent.start()
    missed = wait_for(
        lambda: [a for a in _stored_alerts(agent) if a.kind == "missed"], what="missed alerts"
    )
    wait_for(lambda: len(hook.kinds("tick")) >= len(missed), what="missed alerts delivered")
    agent.stop()
    received = [a["execution_id"] for a in hook.alerts() if a["kind"] == "missed"]
    assert sorted(received) == sorted(
        a.execution_id for a in _stored_alerts(agent) if a.kind == "missed"
    )
    assert len(received) == len(set(received)) >= 2


def test_a_job_failing_every_second_sends_a_digest(agent: AgentProc, hook: HttpReceiver) -> None:
    """Past the rate limit a job's alerts are held and sent together as one digest."""
    _config(agent, hook, "rate_limit_burst = 2\nrate_limit_window_s = 3")
    agent.write_jobs(
        "noisy.toml",
        '[job.noisy]\ncommand = "exit 1"\ncron = "* * * * * *"\nconcurrency = "allow"\n',
    )
    agent.start()
    wait_for(
        lambda: any(body["type"] == "digest" for _, _, body in hook.posts),
        timeout_s=20,
        what="a digest",
    )
    agent.stop()
    digests = [body for _, _, body in hook.posts if body["type"] == "digest"]
    assert all(d["count"] == len(d["alerts"]) > 1 for d in digests)
    ids = [a["id"] for a in hook.alerts()]
    assert len(ids) == len(set(ids))


def test_email_and_command_channels_per_job(
    agent: AgentProc, hook: HttpReceiver, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    """A job's own channels: email to its crontab MAILTO, and a local command with the body."""
    out = tmp_path / "paged.json"
    script = tmp_path / "page"
    script.write_text(f"#!/bin/sh\ncat > {out}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    _config(
        agent,
        hook,
        extra=f"""
        [alerts.channel.mail]
        type = "email"
        host = "127.0.0.1"
        port = {smtp.port}
        tls = "none"
        to = ["ops@example.org"]

        [alerts.channel.page]
        type = "command"
        command = ["{script}"]
        """,
    )
    agent.write_jobs(
        "cron.toml",
        """
        [job.nightly]
        command = "exit 2"
        labels = { mailto = "dba@example.org" }
        alerts = { channels = ["mail", "page"] }
        """,
    )
    agent.start()
    _run(agent, "nightly")
    wait_for(lambda: smtp.messages and out.exists(), what="an email and a paged command")
    agent.stop()
    ((rcpt, message),) = smtp.messages
    assert rcpt == ["dba@example.org"] and "nightly" in message["Subject"]
    (body,) = smtp.bodies()
    assert body["alerts"][0]["kind"] == "failed"
    assert json.loads(out.read_text())["alerts"][0]["id"] == body["alerts"][0]["id"]
    assert hook.posts == []  # the job's channels replace the agent's defaults


def test_lost_run_after_a_power_cut_arrives_once(agent: AgentProc, hook: HttpReceiver) -> None:
    """Agent, supervisor and job all die at once: after the restart a `lost` alert arrives once."""
    _config(agent, hook)
    agent.write_jobs("l.toml", '[job.long]\ncommand = "sleep 300"\n')
    agent.start()
    first = _run(agent, "long", wait=False)["execution"]
    wait_for(
        lambda: agent.request("history", {"job": "long"})[0]["status"] == "running",
        what="the run to start",
    )
    agent.kill9()
    agent.cleanup()  # the power goes: supervisor and job die with the agent
    agent.start()
    wait_for(lambda: hook.kinds("long"), what="the lost alert after the restart")
    agent.stop()
    assert hook.kinds("long") == ["lost"]
    (alert,) = [a for a in hook.alerts() if a["job"] == "long"]
    assert alert["execution_id"] == first["id"]
