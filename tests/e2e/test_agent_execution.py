"""End to end: retries, timeouts, kill -9 re-adoption, concurrency policies."""

from __future__ import annotations

import os
import signal

import psutil

from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from tests.e2e.agentkit import AgentProc, wait_for


def _final(agent: AgentProc, job: str, n: int = 1) -> list:
    rows = [r for r in agent.executions(job) if r.status.is_final]
    return rows if len(rows) >= n else []


def test_failing_job_with_two_retries_gives_three_executions(agent: AgentProc) -> None:
    """retry.count = 2 on a failing job: three executions, one run id, retry_index 0, 1, 2."""
    agent.write_jobs(
        "fail.toml",
        """
        [job.fail]
        command = "echo trying; exit 3"
        retry = { count = 2, delay_s = 0.2, backoff = "fixed", jitter = 0.0 }
        """,
    )
    agent.start()
    agent.request("run", {"job": "fail"})
    rows = wait_for(lambda: _final(agent, "fail", 3), what="three final executions")
    assert [r.retry_index for r in rows] == [0, 1, 2]
    assert {r.run_id for r in rows} == {rows[0].id}
    assert [r.trigger for r in rows] == [Trigger.MANUAL, Trigger.RETRY, Trigger.RETRY]
    assert all(r.status is S.FAILED and r.exit_code == 3 for r in rows)
    assert all("trying" in r.stdout_tail for r in rows)


def test_retry_waiting_for_its_delay_survives_kill9(agent: AgentProc) -> None:
    """A retry committed but still waiting for its delay runs after kill -9 and a restart."""
    agent.write_jobs(
        "fail.toml",
        """
        [job.fail]
        command = "exit 3"
        retry = { count = 1, delay_s = 2, jitter = 0.0 }
        """,
    )
    agent.start()
    agent.request("run", {"job": "fail"})
    wait_for(
        lambda: [r for r in agent.executions("fail") if r.status is S.PENDING],
        what="the retry to be committed",
    )
    agent.kill9()
    agent.start()
    rows = wait_for(lambda: _final(agent, "fail", 2), what="the retry to run")
    assert [(r.retry_index, r.status) for r in rows] == [(0, S.FAILED), (1, S.FAILED)]
    assert rows[0].run_id == rows[1].run_id


def test_timeout_kills_setsid_grandchild(agent: AgentProc) -> None:
    """A timed-out job whose grandchild escaped with setsid leaves no process behind."""
    marker = agent.data_dir / "escaped-marker"
    agent.write_jobs(
        "slow.toml",
        f"""
        [job.slow]
        command = "setsid sleep 300 {marker} & sleep 300"
        timeout_s = 0.5
        kill_grace_s = 0.5
        """,
    )
    agent.start()
    agent.request("run", {"job": "slow"})
    (row,) = wait_for(lambda: _final(agent, "slow"), what="the timed-out execution")
    assert row.status is S.TIMEOUT

    def escaped() -> list[psutil.Process]:
        return [
            p for p in psutil.process_iter(["cmdline"]) if str(marker) in (p.info["cmdline"] or ())
        ]

    wait_for(lambda: not escaped(), what="the setsid grandchild to be gone")


GATED = """
[job.seven]
command = "while [ ! -e {go} ]; do sleep 0.05; done; exit 7"
"""


def test_kill9_during_run_then_restart_readopts(agent: AgentProc) -> None:
    """kill -9 of the agent mid-run; after a restart it re-adopts the job, which ends with 7."""
    go = agent.data_dir / "go"
    agent.write_jobs("job.toml", GATED.format(go=go))
    agent.start()
    first = agent.request("run", {"job": "seven"})["execution"]
    assert first["status"] == "running"
    agent.kill9()
    agent.start()
    assert f"re-adopted {first['id']}" in agent.stderr()
    go.touch()
    (row,) = wait_for(lambda: _final(agent, "seven"), what="the re-adopted execution to end")
    assert (row.id, row.status, row.exit_code) == (first["id"], S.FAILED, 7)


def test_job_that_ended_while_agent_was_down_is_recorded(agent: AgentProc) -> None:
    """A job that finishes while the agent is dead is recorded with its real exit at restart."""
    go = agent.data_dir / "go"
    agent.write_jobs("job.toml", GATED.format(go=go))
    agent.start()
    first = agent.request("run", {"job": "seven"})["execution"]
    agent.kill9()
    go.touch()
    wait_for((agent.data_dir / "runs" / first["id"] / "exit.json").exists, what="exit.json")
    agent.start()
    (row,) = wait_for(lambda: _final(agent, "seven"), what="the execution to be recorded")
    assert (row.id, row.status, row.exit_code) == (first["id"], S.FAILED, 7)


def test_concurrency_forbid_skips_with_reason(agent: AgentProc) -> None:
    """concurrency = forbid: a run while one is running is skipped, naming the running one."""
    agent.write_jobs("f.toml", '[job.f]\ncommand = "sleep 1"\nconcurrency = "forbid"\n')
    agent.start()
    first = agent.request("run", {"job": "f"})["execution"]
    second = agent.request("run", {"job": "f"})["execution"]
    assert second["status"] == "skipped"
    assert "forbid" in second["reason"] and first["id"] in second["reason"]


def test_concurrency_replace_cancels_the_running_one(agent: AgentProc) -> None:
    """concurrency = replace: a new run cancels the running one, then runs itself."""
    agent.write_jobs(
        "r.toml", '[job.r]\ncommand = "sleep 30"\nconcurrency = "replace"\nkill_grace_s = 1\n'
    )
    agent.start()
    first = agent.request("run", {"job": "r"})["execution"]
    second = agent.request("run", {"job": "r"})["execution"]
    assert second["status"] == "running"
    rows = wait_for(lambda: _final(agent, "r"), what="the first run to be cancelled")
    assert [(r.id, r.status) for r in rows] == [(first["id"], S.CANCELLED)]
    agent.request("cancel", {"execution": second["id"]})
    wait_for(lambda: _final(agent, "r", 2), what="the second run to be cancelled")


def test_agent_exits_with_one_line_when_the_supervisor_dies(agent: AgentProc) -> None:
    """kill -9 of the supervisor: the agent stops with exit 2 and says why, no traceback."""
    status = agent.start().wait_ready()
    os.kill(status["supervisor_pid"], signal.SIGKILL)
    assert agent.proc is not None
    assert agent.proc.wait(timeout=20) == 2
    assert "lost the supervisor" in agent.stderr()
    assert "Traceback" not in agent.stderr()


def test_power_cut_marks_the_running_run_lost(agent: AgentProc) -> None:
    """Agent, supervisor and job all killed at once: after a restart the run is lost, saying why."""
    agent.write_jobs("job.toml", '[job.long]\ncommand = "sleep 300"\n')
    agent.start()
    first = agent.request("run", {"job": "long"})["execution"]
    agent.kill9()
    agent.cleanup()  # the power goes: supervisor and job die with the agent
    agent.start()
    (row,) = wait_for(lambda: _final(agent, "long"), what="the run to be settled")
    assert (row.id, row.status) == (first["id"], S.LOST)
    assert row.reason


def test_script_job_runs_the_stored_version(agent: AgentProc) -> None:
    """A job with script = "name@sha256:..." runs that stored script's text."""
    from agentd.server.scripts import ScriptStore

    store = ScriptStore(agent.data_dir / "scripts")
    info = store.put("hello", 'echo "from script $SQU_JOB"\n', "/bin/sh", "test", 1.0)
    store.put("hello", "echo a newer version\n", "/bin/sh", "test", 2.0)
    agent.write_jobs("s.toml", f'[job.s]\nscript = "{info.ref}"\n')
    agent.start()
    done = agent.request("run", {"job": "s", "wait": True}, timeout_s=30)
    assert done["exit_code"] == 0
    assert done["execution"]["stdout_tail"] == "from script s\n"
