"""End to end for job definitions: init then serve, and an imported crontab run by a real agent."""

from __future__ import annotations

import json

from tests.e2e.agentkit import AgentProc

CRONTAB = """\
MAILTO=ops@example.com
HOME=/tmp
0 3 * * * cat%Hello,%%50\\% done
0 4 * * * pwd
"""


def test_imported_crontab_runs_like_cron(agent: AgentProc) -> None:
    """An imported % job gets cron's stdin bytes, and HOME from the crontab is its directory."""
    crontab = agent.data_dir.parent / "crontab"
    crontab.write_text(CRONTAB)
    out = agent.data_dir / "jobs.d" / "cron.toml"
    imported = agent.cli("import-crontab", str(crontab), "-o", str(out))
    assert imported.returncode == 0, imported.stderr
    agent.start()
    fed = json.loads(agent.cli("run", "cat", "--wait", "--json").stdout)
    assert fed["execution"]["stdout_tail"] == "Hello,\n\n50% done\n"
    where = json.loads(agent.cli("run", "pwd", "--wait", "--json").stdout)
    assert where["execution"]["stdout_tail"] == "/tmp\n"


def test_init_then_serve(agent: AgentProc) -> None:
    """An agent starts on a data dir made by init (its store, config and jobs.d)."""
    made = agent.cli("init")
    assert made.returncode == 0, made.stderr
    agent.write_jobs("a.toml", '[job.a]\ncommand = "echo from init"\n')
    agent.start()
    done = json.loads(agent.cli("run", "a", "--wait", "--json").stdout)
    assert done["execution"]["stdout_tail"] == "from init\n"
