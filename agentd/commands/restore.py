"""``squ-agentd restore BACKUP``: put a ``squ-agentd backup`` back, with a new epoch.

Run it with the agent stopped (it refuses otherwise). It:

1. moves the current store (with its ``-wal``/``-shm``), ``tls/``, ``identity/``
   and ``authorized_operators`` aside into ``DATA/before-restore-<time>/``
   (nothing is deleted);
2. copies the backup's store and identity files in;
3. mints a **new epoch** in the restored store and records its high-water mark.
   The restored history ends where the backup was taken, so the ``seq``
   numbers after it will be handed out again: consoles see the new epoch and
   resync from the start instead of trusting cursors that point past the end
   (DESIGN.md: history sync). Minting here, rather than relying on the
   high-water sidecar, also covers a restore onto a new machine with no sidecar;
4. restores ``agentd.toml`` and the ``jobs.d`` files only where the agent has
   none (on a rebuilt server); otherwise configuration management owns them.

Then start the agent. Executions that were unfinished in the backup are settled
by the start-up reconciliation (re-adopted if still running, else ``lost``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
from pathlib import Path

from agentd.commands._common import BadArgument, add_data_dir, data_dir_of
from agentd.commands.backup import IDENTITY_ITEMS
from shared.errors import SquError

__all__ = ["AgentRunning", "restore"]


class AgentRunning(SquError):
    """The agent answers on its control socket: restoring under it would lose its writes."""

    code = "agent_running"

    def __init__(self, data_dir: Path, pid: object) -> None:
        super().__init__(
            f"the agent serving {data_dir} is running (pid {pid}); stop it first: "
            "systemctl stop squ-agentd (running jobs are kept by the supervisor)"
        )


def restore(backup_dir: Path, data_dir: Path, *, now: dt.datetime | None = None) -> dict[str, str]:
    """Restore ``backup_dir`` into ``data_dir``; returns what was done (epoch, set-aside dir)."""
    import sqlite_utils

    from agentd import control
    from agentd.config import CONFIG_FILE, STORE_FILE, load_config
    from agentd.store import epoch, open_readonly

    backup_store = backup_dir / STORE_FILE
    if not backup_store.is_file():
        raise BadArgument("BACKUP", f"{backup_dir} holds no {STORE_FILE}: not a squ-agentd backup")
    open_readonly(backup_store).close()  # StoreUnreadable / StoreTooNew name the problem
    try:
        status = control.request(control.socket_path(data_dir), "status", None, timeout_s=5.0)
    except control.DaemonNotRunning:
        pass
    else:
        raise AgentRunning(data_dir, status.get("pid"))

    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = data_dir / f"before-restore-{stamp}"
    aside.mkdir(mode=0o700)
    for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", *IDENTITY_ITEMS):
        if (data_dir / name).exists():
            os.replace(data_dir / name, aside / name)

    target = data_dir / STORE_FILE
    shutil.copyfile(backup_store, target)
    os.chmod(target, 0o600)
    db = sqlite_utils.Database(target)
    try:
        new_epoch = epoch.mint_epoch(db)
        epoch.record_high_water(db)
    finally:
        db.close()
    for item in IDENTITY_ITEMS:
        source = backup_dir / item
        if source.is_dir():
            shutil.copytree(source, data_dir / item)
        elif source.is_file():
            shutil.copy2(source, data_dir / item)

    done = {"epoch": new_epoch, "set_aside": str(aside)}
    config_path = data_dir / CONFIG_FILE
    if not config_path.exists() and not config_path.is_symlink():
        if (backup_dir / "agentd.toml").is_file():
            shutil.copy2(backup_dir / "agentd.toml", config_path)
            done["config"] = str(config_path)
    jobs_dir = load_config(data_dir).jobs_dir
    assert jobs_dir is not None
    if (backup_dir / "jobs.d").is_dir() and not any(jobs_dir.glob("*.toml")):
        jobs_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        for path in (backup_dir / "jobs.d").iterdir():
            if path.is_file():
                shutil.copy2(path, jobs_dir / path.name)
        done["jobs_dir"] = str(jobs_dir)
    return done


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("restore", help="put a backup back (agent stopped); mints a new epoch")
    add_data_dir(parser)
    parser.add_argument("backup", type=Path, metavar="BACKUP", help="a directory made by backup")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    done = restore(args.backup, data_dir_of(args))
    print(f"restored {args.backup}")
    print(f"new epoch: {done['epoch']} (consoles will resync this agent from the start)")
    print(f"previous files kept in {done['set_aside']}")
    for key in ("config", "jobs_dir"):
        if key in done:
            print(f"restored {key.replace('_', ' ')}: {done[key]}")
    print("next: systemctl start squ-agentd")
    return 0
