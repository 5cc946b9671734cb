"""The ``squ`` CLI over the wire, against three real agents on 127.0.0.1.

One module-wide fleet of three agents (each test uses its own job names), the
CLI run as a subprocess exactly as an operator would.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agentkit import wait_for
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire

AGENTS = ("db1", "db2", "db3")


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    _skip_if_missing()
    kit = Wire(tmp_path_factory.mktemp("wire"))
    try:
        for name in AGENTS:
            kit.agent(name)
        yield kit
    finally:
        kit.cleanup()


def jobs_file(wire: Wire, name: str, text: str) -> Path:
    path = wire.tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def test_apply_creates_the_job_on_three_agents_then_changes_nothing(wire: Wire) -> None:
    """apply creates a job on every agent; applying the same file again is a no-op."""
    path = jobs_file(
        wire,
        "nightly.toml",
        """
        [job.nightly]
        command = "echo nightly"
        cron = "0 3 * * *"
        """,
    )
    first = wire.squ("apply", str(path))
    assert first.returncode == 0, first.stderr
    assert '+command = "echo nightly"' in first.stdout
    for agent in AGENTS:
        assert f"{agent}: nightly created (version 1)" in first.stdout
    again = wire.squ("apply", str(path), "--json")
    assert again.returncode == 0, again.stderr
    assert {(r["agent"], r["result"]) for r in json.loads(again.stdout)} == {
        (a, "unchanged") for a in AGENTS
    }


def test_apply_dry_run_shows_the_diff_and_changes_nothing(wire: Wire) -> None:
    """--dry-run prints the diff against the agent's version and leaves the job as it was."""
    path = jobs_file(wire, "dry.toml", '[job.dry]\ncommand = "echo one"\n')
    assert wire.squ("apply", str(path), "--on", "db1").returncode == 0
    path.write_text('[job.dry]\ncommand = "echo two"\n')
    dry = wire.squ("apply", str(path), "--on", "db1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert '-command = "echo one"' in dry.stdout
    assert '+command = "echo two"' in dry.stdout
    assert "db1: dry would be updated" in dry.stdout
    listed = json.loads(wire.squ("jobs", "--on", "db1", "--json").stdout)
    (job,) = [j for j in listed if j["name"] == "dry"]
    assert job["job"]["command"] == "echo one"
    assert job["version"] == 1


def test_apply_updates_a_changed_job_with_a_new_version(wire: Wire) -> None:
    """A changed definition is written over the version it was diffed against."""
    path = jobs_file(wire, "upd.toml", '[job.upd]\ncommand = "echo one"\n')
    assert wire.squ("apply", str(path), "--on", "db2").returncode == 0
    path.write_text('[job.upd]\ncommand = "echo two"\n')
    result = wire.squ("apply", str(path), "--on", "db2")
    assert result.returncode == 0, result.stderr
    assert "db2: upd updated (version 2)" in result.stdout


def test_apply_goes_to_the_jobs_targets(wire: Wire) -> None:
    """A job with targets is applied to those agents only."""
    path = jobs_file(wire, "targeted.toml", '[job.targeted]\ncommand = "true"\ntargets = ["db3"]\n')
    result = wire.squ("apply", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert [(r["agent"], r["result"]) for r in json.loads(result.stdout)] == [("db3", "created")]


def test_apply_of_a_job_declared_in_a_file_names_that_file(wire: Wire) -> None:
    """A job that lives in an agent's jobs.d is refused, naming the file to edit."""
    agent = wire.agents["db1"]
    declared = agent.write_jobs("owned.toml", '[job.owned]\ncommand = "true"\n')
    agent.hup()
    wait_for(
        lambda: "owned" in wire.squ("jobs", "--on", "db1").stdout,
        what="jobs.d reload",
        timeout_s=30,
    )
    path = jobs_file(wire, "owned.toml", '[job.owned]\ncommand = "echo mine"\n')
    result = wire.squ("apply", str(path), "--on", "db1")
    assert result.returncode == 1
    assert str(declared) in result.stderr
    assert "db1" in result.stderr


def test_apply_of_a_bad_file_names_the_line(wire: Wire) -> None:
    """A broken jobs file is refused before any agent is touched, with file and problem."""
    path = jobs_file(wire, "bad.toml", '[job.bad]\ncommand = "true"\ncron = "61 * * * *"\n')
    result = wire.squ("apply", str(path))
    assert result.returncode == 2
    assert "bad.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_wait_streams_output_and_mirrors_the_exit_code(wire: Wire) -> None:
    """run --wait prints the job's stdout and stderr apart and exits with its code."""
    path = jobs_file(
        wire, "fails.toml", '[job.fails]\ncommand = "echo out; echo oops >&2; exit 7"\n'
    )
    assert wire.squ("apply", str(path), "--on", "db1").returncode == 0
    result = wire.squ("run", "fails", "--wait")
    assert result.returncode == 7
    assert result.stdout == "out\n"
    assert "oops" in result.stderr
    assert "db1: fails failed exit 7" in result.stderr


def test_run_passes_parameters_as_environment(wire: Wire) -> None:
    """--param overrides a typed parameter; the job sees it as SQU_PARAM_<NAME>."""
    path = jobs_file(
        wire,
        "param.toml",
        """
        [job.param]
        command = 'echo "hello $SQU_PARAM_WHO"'
        [[job.param.parameters]]
        name = "who"
        type = "str"
        default = "world"
        """,
    )
    assert wire.squ("apply", str(path), "--on", "db2").returncode == 0
    result = wire.squ("run", "param", "--on", "db2", "--param", "who=Ada", "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello Ada\n"


def test_run_with_an_unknown_parameter_is_refused_by_the_agent(wire: Wire) -> None:
    """A parameter the job does not declare is refused, naming it and the agent."""
    path = jobs_file(wire, "strict.toml", '[job.strict]\ncommand = "true"\n')
    assert wire.squ("apply", str(path), "--on", "db2").returncode == 0
    result = wire.squ("run", "strict", "--on", "db2", "--param", "nope=1")
    assert result.returncode == 1
    assert "nope" in result.stderr and "db2" in result.stderr


def test_run_of_an_unknown_job_says_where_it_looked(wire: Wire) -> None:
    """A job no agent has is an error naming the agents asked."""
    result = wire.squ("run", "no-such-job")
    assert result.returncode == 2
    assert "no job named 'no-such-job' on db1, db2, db3" in result.stderr


def test_follow_a_running_jobs_log_live_then_see_it_in_history(wire: Wire) -> None:
    """logs --follow shows lines while the job runs, ends with it; history lists the run."""
    path = jobs_file(
        wire,
        "slow.toml",
        """
        [job.slow]
        command = "for i in $(seq 1 12); do echo line $i; sleep 0.5; done"
        """,
    )
    assert wire.squ("apply", str(path), "--on", "db3").returncode == 0
    started = wire.squ("run", "slow", "--on", "db3", "--json")
    assert started.returncode == 0, started.stderr
    exec_id = json.loads(started.stdout)[0]["execution_id"]
    follow = wire.popen("logs", f"{exec_id}@db3", "--follow")
    assert follow.stdout is not None
    first = follow.stdout.readline()
    # The first line arrived while the job still ran: live, not at the end.
    (execution,) = wire.agents["db3"].executions("slow")
    assert execution.status == "running"
    # Read on through the same buffered stream (communicate() would skip what it holds).
    rest = follow.stdout.read()
    assert follow.wait(timeout=30) == 0, follow.stderr.read()  # type: ignore[union-attr]
    assert first == "line 1\n"
    assert rest.splitlines() == [f"line {i}" for i in range(2, 13)]
    history = wire.squ("history", "--job", "slow", "--json")
    assert history.returncode == 0, history.stderr
    (row,) = json.loads(history.stdout)
    assert (row["id"], row["agent"], row["status"]) == (exec_id, "db3", "success")


def test_logs_of_a_finished_run_keep_stdout_and_stderr_apart(wire: Wire) -> None:
    """logs prints the stored output: stdout to stdout, stderr to stderr, bytes exact."""
    path = jobs_file(
        wire, "both.toml", "[job.both]\ncommand = \"printf 'a\\\\tb\\\\n'; echo e >&2\"\n"
    )
    assert wire.squ("apply", str(path), "--on", "db1").returncode == 0
    ran = wire.squ("run", "both", "--on", "db1", "--wait", "--quiet", "--json")
    assert ran.returncode == 0, ran.stderr
    exec_id = json.loads(ran.stdout)[0]["execution"]["id"]
    result = wire.squ("logs", exec_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\tb\n"
    assert result.stderr == "e\n"


def test_cancel_stops_a_running_execution(wire: Wire) -> None:
    """cancel ends a running job; run --wait then exits 130 (cancelled)."""
    path = jobs_file(wire, "long.toml", '[job.long]\ncommand = "sleep 60"\n')
    assert wire.squ("apply", str(path), "--on", "db2").returncode == 0
    waiting = wire.popen("run", "long", "--on", "db2", "--wait", "--quiet")
    agent = wire.agents["db2"]
    running = wait_for(
        lambda: [e for e in agent.executions("long") if e.status == "running"],
        what="the job running",
        timeout_s=30,
    )
    result = wire.squ("cancel", f"{running[0].id}@db2")
    assert result.returncode == 0, result.stderr
    assert waiting.wait(timeout=30) == 130


def test_an_unreachable_agent_is_named_and_the_rest_answer(wire: Wire) -> None:
    """With one agent down, jobs lists the others, names the down one, exits 4."""
    # Its own job, so the test does not depend on which tests ran before it (xdist).
    path = jobs_file(wire, "present.toml", '[job.present]\ncommand = "true"\n')
    assert wire.squ("apply", str(path)).returncode == 0
    added = wire.squ("agents", "add", "gone", "ws://127.0.0.1:9")
    assert added.returncode == 0, added.stderr
    try:
        result = wire.squ("jobs")
        assert result.returncode == 4
        assert "gone: down (connection refused" in result.stderr
        assert "present" in result.stdout
    finally:
        wire.squ("agents", "remove", "gone")


def test_run_wait_follows_retries_to_the_end_of_the_run(wire: Wire) -> None:
    """--wait lasts until the last retry ends: both attempts' output, the last one's code."""
    path = jobs_file(
        wire,
        "retried.toml",
        """
        [job.retried]
        command = "echo try $SQU_RETRY_INDEX; exit 5"
        [job.retried.retry]
        count = 1
        delay_s = 0.5
        """,
    )
    assert wire.squ("apply", str(path), "--on", "db3").returncode == 0
    result = wire.squ("run", "retried", "--on", "db3", "--wait")
    assert result.returncode == 5
    assert result.stdout.count("try") == 2
    assert "retry 1 as" in result.stderr
    assert "db3: retried failed exit 5" in result.stderr


def test_run_wait_quiet_also_waits_for_retries(wire: Wire) -> None:
    """Without streaming, --wait still ends with the run's last execution."""
    path = jobs_file(
        wire,
        "retried2.toml",
        """
        [job.retried2]
        command = "exit 6"
        [job.retried2.retry]
        count = 1
        delay_s = 0.5
        """,
    )
    assert wire.squ("apply", str(path), "--on", "db2").returncode == 0
    result = wire.squ("run", "retried2", "--on", "db2", "--wait", "--quiet", "--json")
    assert result.returncode == 6
    (row,) = json.loads(result.stdout)
    assert row["execution"]["retry_index"] == 1
