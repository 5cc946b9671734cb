"""squ-agentd backup / restore: an online snapshot, and a restore that mints a new epoch."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.commands.backup import backup
from agentd.commands.restore import AgentRunning, restore
from agentd.config import init_data_dir
from agentd.server.boot import init_server_files
from agentd.store import open_readonly
from agentd.store.epoch import sidecar_path
from agentd.store.meta import get as meta_get
from tests.e2e.agentkit import AgentProc


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    proc = AgentProc(tmp_path / "data")
    init_data_dir(proc.data_dir)
    init_server_files(proc.data_dir, "test-host")
    (proc.data_dir / "agentd.toml").write_text("[server]\nport = 0\n")
    proc.write_jobs("ok.toml", '[job.ok]\ncommand = "true"\n')
    try:
        yield proc
    finally:
        proc.cleanup()


def _epoch(data: Path) -> str:
    db = open_readonly(data / "agentd.db")
    try:
        return str(meta_get(db, "epoch"))
    finally:
        db.close()


def test_backup_while_running_then_restore_mints_new_epoch(
    agent: AgentProc, tmp_path: Path
) -> None:
    """A backup taken while the agent runs restores to that point, under a new epoch."""
    agent.start()
    agent.request("run", {"job": "ok", "wait": True})
    made = backup(agent.data_dir, tmp_path / "backups")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert (made / "tls" / "agent.crt").exists() and (made / "jobs.d" / "ok.toml").exists()
    agent.request("run", {"job": "ok", "wait": True})  # after the backup: not in it
    old_epoch = agent.request("status")["epoch"]
    agent.stop()

    done = restore(made, agent.data_dir)
    assert done["epoch"] != old_epoch
    assert _epoch(agent.data_dir) == done["epoch"]
    assert len(agent.executions("ok")) == 1  # back to the backup's point
    assert (Path(done["set_aside"]) / "agentd.db").exists()  # the replaced store is kept
    assert done["epoch"] in sidecar_path_text(agent.data_dir)

    agent.start()
    assert agent.request("status")["epoch"] == done["epoch"]
    agent.request("run", {"job": "ok", "wait": True})
    assert len(agent.executions("ok")) == 2


def sidecar_path_text(data: Path) -> str:
    db = open_readonly(data / "agentd.db")
    try:
        return sidecar_path(db).read_text()
    finally:
        db.close()


def test_restore_refuses_while_the_agent_runs(agent: AgentProc, tmp_path: Path) -> None:
    """Restoring under a running agent is refused, naming how to stop it; nothing is moved."""
    agent.start()
    made = backup(agent.data_dir, tmp_path / "backups")
    with pytest.raises(AgentRunning, match="systemctl stop squ-agentd"):
        restore(made, agent.data_dir)
    assert not list(agent.data_dir.glob("before-restore-*"))


def test_restore_onto_a_new_server_brings_identity_config_and_jobs(
    agent: AgentProc, tmp_path: Path
) -> None:
    """Onto an empty data dir: store, certificate, config and job files all come back."""
    made = backup(agent.data_dir, tmp_path / "backups")
    fresh = tmp_path / "rebuilt"
    done = restore(made, fresh)
    assert (fresh / "tls" / "agent.crt").read_bytes() == (made / "tls" / "agent.crt").read_bytes()
    assert (fresh / "agentd.toml").exists() and (fresh / "jobs.d" / "ok.toml").exists()
    assert _epoch(fresh) == done["epoch"] != _epoch(made)


def test_restore_rejects_a_directory_that_is_not_a_backup(tmp_path: Path) -> None:
    """A directory without a store is refused with a message that says so."""
    from agentd.commands._common import BadArgument

    with pytest.raises(BadArgument, match="not a squ-agentd backup"):
        restore(tmp_path, tmp_path / "data")
