"""End to end: the squ-agentd commands against a running agent, and reloads."""

from __future__ import annotations

import json
import socket

import pytest

from agentd import control
from shared.enums import ExecutionStatus as S
from tests.e2e.agentkit import AgentProc, wait_for

JOBS = """
[job.hello]
command = "echo hello $SQU_PARAM_WHO; echo oops >&2"

[[job.hello.parameters]]
name = "who"
default = "world"

[job.exit5]
command = "exit 5"

[job.count]
command = "for i in 1 2 3; do echo line $i; sleep 0.3; done"
"""


@pytest.fixture(scope="module")
def cli_agent(shared_agent: AgentProc) -> AgentProc:
    """A running agent holding JOBS, shared by the tests that only add executions."""
    shared_agent.write_jobs("jobs.toml", JOBS)
    return shared_agent.start()


def test_run_wait_mirrors_exit_code(cli_agent: AgentProc) -> None:
    """`run --wait` exits with the job's own exit code."""
    done = cli_agent.cli("run", "exit5", "--wait")
    assert done.returncode == 5, done.stderr
    ok = cli_agent.cli("run", "hello", "--wait")
    assert ok.returncode == 0, ok.stderr


def test_run_unknown_job_is_a_clear_error(cli_agent: AgentProc) -> None:
    """`run` of a job that does not exist says so in one line, exit code 2."""
    done = cli_agent.cli("run", "nope")
    assert done.returncode == 2
    assert "no job named 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_history_json_and_logs(cli_agent: AgentProc) -> None:
    """history --json lists the run with its parameters; logs prints each stream."""
    assert cli_agent.cli("run", "hello", "-p", "who=Ada", "--wait").returncode == 0
    hist = cli_agent.cli("history", "--job", "hello", "--limit", "1", "--json")
    assert hist.returncode == 0, hist.stderr
    (row,) = json.loads(hist.stdout)
    assert row["status"] == "success" and row["params"] == {"who": "Ada"}
    out = cli_agent.cli("logs", row["id"], "--stream", "stdout")
    assert out.stdout == "hello Ada\n", out.stderr
    err = cli_agent.cli("logs", row["id"], "--stream", "stderr")
    assert err.stdout == "oops\n"


def test_history_works_without_the_agent(agent: AgentProc) -> None:
    """history reads the store directly when no agent runs."""
    agent.write_jobs("jobs.toml", JOBS)
    agent.start()
    assert agent.cli("run", "exit5", "--wait").returncode == 5
    agent.stop()
    hist = agent.cli("history", "--status", "failed", "--since", "1h", "--json")
    assert [r["job"] for r in json.loads(hist.stdout)] == ["exit5"]


def test_jobs_and_status(cli_agent: AgentProc) -> None:
    """jobs --json shows each job with its source file; status shows the agent's pid."""
    path = cli_agent.jobs_dir / "jobs.toml"
    jobs = json.loads(cli_agent.cli("jobs", "--json").stdout)
    assert {j["name"]: j["source"] for j in jobs} == {
        "hello": f"file:{path}",
        "exit5": f"file:{path}",
        "count": f"file:{path}",
    }
    status = json.loads(cli_agent.cli("status", "--json").stdout)
    assert status["pid"] == cli_agent.proc.pid
    assert status["jobs"] == 3


def test_status_without_agent_says_how_to_start_it(agent: AgentProc) -> None:
    """status with no agent running exits 2 and tells how to start it."""
    done = agent.cli("status")
    assert done.returncode == 2
    assert "squ-agentd serve" in done.stderr


def test_sighup_with_broken_file_keeps_last_good_job(agent: AgentProc) -> None:
    """After SIGHUP, a file with an error is reported and its job keeps its last definition."""
    agent.write_jobs("a.toml", '[job.a]\ncommand = "echo v1"\n')
    agent.start()
    agent.write_jobs("a.toml", '[job.a]\ncommand = "echo v2"\ncron = "not a cron"\n')
    agent.hup()
    status = wait_for(
        lambda: (s := agent.request("status"))["job_errors"] and s, what="the reload error"
    )
    assert "a.toml" in status["job_errors"][0]["message"]
    jobs = agent.request("jobs")
    assert [j["name"] for j in jobs] == ["a"]
    done = agent.cli("run", "a", "--wait", "--json")
    assert json.loads(done.stdout)["execution"]["stdout_tail"] == "v1\n"


def test_reload_command_applies_and_reports(agent: AgentProc) -> None:
    """`reload` adds a new file's job at once and exits 1 naming a broken file."""
    agent.start()
    agent.write_jobs("b.toml", '[job.b]\ncommand = "true"\n')
    done = agent.cli("reload")
    assert done.returncode == 0 and "added: b" in done.stdout
    agent.write_jobs("c.toml", "[job.c\n")
    bad = agent.cli("reload")
    assert bad.returncode == 1 and "c.toml" in bad.stdout
    assert agent.executions() == []


def test_sigterm_stops_cleanly_and_leaves_job_running(agent: AgentProc) -> None:
    """SIGTERM stops the agent with exit 0; a running job carries on and is recorded later."""
    agent.write_jobs("j.toml", '[job.j]\ncommand = "sleep 1; exit 0"\n')
    agent.start()
    first = agent.request("run", {"job": "j"})["execution"]
    assert agent.stop() == 0
    agent.start()
    (row,) = wait_for(
        lambda: [r for r in agent.executions("j") if r.status.is_final], what="the job's end"
    )
    assert row.id == first["id"] and row.status is S.SUCCESS


def test_logs_follow_prints_live_output_until_the_end(cli_agent: AgentProc) -> None:
    """logs --follow prints a running job's lines as they come and exits when it ends."""
    ex = cli_agent.request("run", {"job": "count"})["execution"]
    done = cli_agent.cli("logs", ex["id"], "--follow")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "line 1\nline 2\nline 3\n"
    (row,) = [r for r in cli_agent.executions("count") if r.id == ex["id"]]
    assert row.status.is_final


def test_status_reports_where_consoles_connect(cli_agent: AgentProc) -> None:
    """status names the console URL (plain ws on loopback without a certificate) and it accepts."""
    url = wait_for(lambda: cli_agent.request("status")["listen"], what="the listen URL")
    assert url.startswith("ws://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"job": 5}, "bad_request", "'job' must be a job name"),
        ({"job": "hello", "params": ["x"]}, "bad_request", "'params' must be an object"),
        ({"job": "hello", "params": {"nope": "1"}}, "invalid_parameter", "nope"),
        ({"job": "hello", "params": {"who": 3}}, "invalid_parameter", "who"),
    ],
)
def test_bad_run_requests_get_clear_errors(
    cli_agent: AgentProc, params: dict, code: str, words: str
) -> None:
    """A malformed run request is refused with a code and the field named; the agent carries on."""
    with pytest.raises(control.RemoteError) as info:
        cli_agent.request("run", params)
    assert info.value.code == code
    assert words in info.value.message
    assert cli_agent.request("status")["pid"] == cli_agent.proc.pid
