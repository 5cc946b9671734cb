"""``squ-agentd backup DEST``: a consistent copy of an agent's state, safe while it runs.

Writes ``DEST/squ-agentd-<name>-<UTC time>/`` (mode 0700) holding:

* ``agentd.db``  a transactionally consistent snapshot of the store, taken with
  SQLite's online backup API from a read-only connection, so the running agent
  keeps writing (WAL) and nothing it commits later is half in the copy;
* ``tls/``, ``identity/``, ``authorized_operators``, ``agentd.toml`` and the
  ``jobs.d`` files: what makes the agent *this* agent (the certificate consoles
  pinned, who may log in, its jobs).

Execution logs (``logs/``) are not included: they can be large, and the store
holds each run's tails; copy them with rsync if you need them.
``squ-agentd restore`` puts a backup back (see docs/operations.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path

from agentd.commands._common import BadArgument, add_data_dir, data_dir_of

__all__ = ["IDENTITY_ITEMS", "backup", "snapshot_store"]

# Relative to the data dir: what a restore needs besides the store.
IDENTITY_ITEMS = ("tls", "identity", "authorized_operators")


def snapshot_store(source: Path, dest: Path) -> None:
    """Copy the SQLite store at ``source`` into a new file ``dest``, consistently, online."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    out = sqlite3.connect(dest)
    try:
        src.backup(out)  # one consistent read transaction; the writer is not blocked (WAL)
        out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        out.close()
        src.close()


def backup(data_dir: Path, dest_root: Path, *, now: dt.datetime | None = None) -> Path:
    """Write a backup of ``data_dir`` under ``dest_root``; returns the directory made."""
    from agentd.config import STORE_FILE, load_config

    config = load_config(data_dir)
    store = data_dir / STORE_FILE
    if not store.exists():
        raise BadArgument(
            "--data-dir", f"{data_dir} has no store ({STORE_FILE}); nothing to back up"
        )
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / f"squ-agentd-{config.name}-{stamp}"
    try:
        dest.mkdir(mode=0o700)
    except FileExistsError:
        raise BadArgument("DEST", f"{dest} already exists; choose another destination") from None
    snapshot_store(store, dest / STORE_FILE)
    for item in IDENTITY_ITEMS:
        _copy(data_dir / item, dest / item)
    # agentd.toml may be a link to /etc (the .deb): the backup holds its content.
    _copy(config.config_path, dest / "agentd.toml")
    assert config.jobs_dir is not None
    _copy(config.jobs_dir, dest / "jobs.d")
    return dest


def _copy(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=False)
    elif source.is_file():
        shutil.copy2(source, dest)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "backup", help="copy the store, certificate, operators and jobs (safe while running)"
    )
    add_data_dir(parser)
    parser.add_argument("dest", type=Path, metavar="DEST", help="directory to put the backup in")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dest = backup(data_dir_of(args), args.dest)
    print(f"backed up to {dest}")
    return 0
