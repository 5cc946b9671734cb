"""The store's epoch: which life of the database a ``seq`` belongs to.

DESIGN.md: the epoch is a random id minted when the database is created or
restored; a console that sees a new epoch resyncs from the start instead of
trusting its cursor. Creation is the first migration. Restoring is noticed
here: beside the database a small sidecar file (``<db>.highwater``) records
the epoch and the highest seq handed out, written at open and at close. If the
database comes back with the same epoch but a lower high-water mark, it went
back in time (a backup was restored), so seqs would be handed out again:
``check_restored`` mints a new epoch. A restore tool may also call
``mint_epoch`` itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

import sqlite_utils

from agentd.store import meta

__all__ = ["check_restored", "high_water", "mint_epoch", "record_high_water", "sidecar_path"]

log = logging.getLogger(__name__)

EPOCH_KEY = "epoch"


def mint_epoch(db: sqlite_utils.Database) -> str:
    """Give the database a new epoch (after a restore); consoles will resync from the start."""
    epoch = secrets.token_hex(16)
    meta.set(db, EPOCH_KEY, epoch)
    return epoch


def high_water(db: sqlite_utils.Database) -> int:
    """The highest seq ever handed out by this database (0 if none)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'seq_counter'").fetchone()
    return 0 if row is None else int(row[0])


def sidecar_path(db: sqlite_utils.Database) -> Path:
    """Where the high-water sidecar of this database lives."""
    return Path(f"{_db_file(db)}.highwater")


def record_high_water(db: sqlite_utils.Database) -> None:
    """Write the sidecar (atomically); called at open and close, and may be called periodically."""
    path = sidecar_path(db)
    text = json.dumps({"epoch": meta.get(db, EPOCH_KEY), "seq": high_water(db)})
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check_restored(db: sqlite_utils.Database) -> str:
    """The epoch to use: the stored one, or a new one if the database went back in time."""
    epoch = str(meta.get(db, EPOCH_KEY))
    try:
        seen = json.loads(sidecar_path(db).read_text())
        seen_epoch, seen_seq = str(seen["epoch"]), int(seen["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return epoch  # no (readable) sidecar: nothing to compare with
    now_seq = high_water(db)
    if seen_epoch == epoch and now_seq < seen_seq:
        log.warning(
            "agent database %s went back from seq %d to %d (restored from a backup?); "
            "minting a new epoch so consoles resync",
            _db_file(db),
            seen_seq,
            now_seq,
        )
        return mint_epoch(db)
    return epoch


def _db_file(db: sqlite_utils.Database) -> str:
    return str(db.execute("PRAGMA database_list").fetchone()[2])
