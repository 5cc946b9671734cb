"""Job definitions as the agent stores them: versions, sources, tombstones.

Sync functions taking ``db`` first, called through ``Store.call``.

Every change takes a new ``seq`` from the same counter as executions, so jobs
can be synced with the same cursor. A deleted job leaves a tombstone (its name,
version and who deleted it) so that a stale edit is refused with a clear
message and the deletion itself can be synced; ``prune_deleted`` drops old ones.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlite_utils

from agentd.store.errors import JobDeclaredInFile, StaleJobVersion
from agentd.store.executions import raise_history_floor
from agentd.store.schema import next_seq
from shared.errors import UnknownJob
from shared.jobs import definition_hash as shared_definition_hash
from shared.models import Job, JobRecord

__all__ = [
    "JobChange",
    "canonical_json",
    "changes_since",
    "definition_hash",
    "delete_job",
    "get_job",
    "list_jobs",
    "prune_deleted",
    "put_job",
    "set_enabled",
]

_COLUMNS = (
    "name",
    "definition",
    "definition_hash",
    "version",
    "source",
    "seq",
    "created_at",
    "updated_at",
    "updated_by",
    "deleted_at",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
_UPSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "name")
)


class JobChange(msgspec.Struct, frozen=True, kw_only=True):
    """One job's latest change, for sync: ``record`` is ``None`` when the job was deleted."""

    name: str
    seq: int
    version: int
    record: JobRecord | None
    deleted_at: float | None = None
    deleted_by: str = ""


def canonical_json(job: Job) -> bytes:
    """The job as JSON with sorted keys: the same definition always gives the same bytes."""
    return msgspec.json.encode(job, order="sorted")


# One definition of the hash (approvals sign it): shared.jobs owns it.
definition_hash = shared_definition_hash


def put_job(
    db: sqlite_utils.Database,
    job: Job,
    *,
    source: str,
    now: float,
    by: str = "",
    expected_version: int | None = None,
) -> JobRecord:
    """Create or replace ``job``; returns the stored record with its new version.

    ``expected_version`` (0 = "must not exist yet") guards an edit made from an
    older copy: a mismatch raises ``StaleJobVersion`` naming who changed it and
    when. A job declared in a ``jobs.d`` file cannot be replaced from any other
    source (``JobDeclaredInFile``). Putting an identical definition from the same
    source changes nothing (no new version, no seq), so a reload is quiet.
    """
    with db.atomic():
        row = _row(db, job.name)
        live = row is not None and row["deleted_at"] is None
        if expected_version is not None:
            actual = row["version"] if row is not None and live else 0
            if expected_version != actual:
                previous = row or {}
                raise StaleJobVersion(
                    job.name,
                    expected=expected_version,
                    actual=actual,
                    by=previous.get("updated_by", ""),
                    at=previous.get("updated_at", now),
                    deleted=row is not None and not live and expected_version != 0,
                )
        if row is not None and live:
            if row["source"].startswith("file:") and not source.startswith("file:"):
                raise JobDeclaredInFile(job.name, row["source"])
            if row["definition_hash"] == definition_hash(job) and row["source"] == source:
                return _record(row)
        new = {
            "name": job.name,
            "definition": canonical_json(job).decode(),
            "definition_hash": definition_hash(job),
            "version": (row["version"] if row is not None else 0) + 1,
            "source": source,
            "seq": next_seq(db),
            "created_at": row["created_at"] if row is not None and live else now,
            "updated_at": now,
            "updated_by": by,
            "deleted_at": None,
        }
        db.execute(_UPSERT, [new[c] for c in _COLUMNS])
        return _record(new)


def get_job(db: sqlite_utils.Database, name: str) -> JobRecord | None:
    """The job named ``name``, or ``None`` if there is none (or it was deleted)."""
    row = _row(db, name)
    if row is None or row["deleted_at"] is not None:
        return None
    return _record(row)


def list_jobs(db: sqlite_utils.Database) -> list[JobRecord]:
    """Every live job, by name."""
    rows = db.execute(f"{_SELECT} WHERE deleted_at IS NULL ORDER BY name")
    return [_record(dict(zip(_COLUMNS, r, strict=True))) for r in rows]


def delete_job(db: sqlite_utils.Database, name: str, *, now: float, by: str) -> None:
    """Delete a job (its history stays); raises ``UnknownJob``. Leaves a tombstone for sync."""
    with db.atomic():
        row = _row(db, name)
        if row is None or row["deleted_at"] is not None:
            raise UnknownJob(name)
        db.execute(
            "UPDATE jobs SET deleted_at = ?, updated_at = ?, updated_by = ?, "
            "version = version + 1, seq = ? WHERE name = ?",
            [now, now, by, next_seq(db), name],
        )


def set_enabled(
    db: sqlite_utils.Database, name: str, enabled: bool, *, now: float, by: str
) -> JobRecord:
    """Pause or resume a job (a new version); raises ``UnknownJob``. No change if already so.

    Allowed for file-declared jobs too, so an operator can pause one in an
    incident; the file's own ``enabled`` wins again at the next reload that changes it.
    """
    with db.atomic():
        record = get_job(db, name)
        if record is None:
            raise UnknownJob(name)
        if record.job.enabled == enabled:
            return record
        job = msgspec.structs.replace(record.job, enabled=enabled)
        return put_job(
            db, job, source=record.source, now=now, by=by, expected_version=record.version
        )


def changes_since(db: sqlite_utils.Database, seq: int, limit: int) -> list[JobChange]:
    """Jobs changed after ``seq`` (deletions included), ascending by ``seq``: one sync batch."""
    rows = db.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit])
    changes = []
    for r in rows:
        row = dict(zip(_COLUMNS, r, strict=True))
        deleted = row["deleted_at"] is not None
        changes.append(
            JobChange(
                name=row["name"],
                seq=row["seq"],
                version=row["version"],
                record=None if deleted else _record(row),
                deleted_at=row["deleted_at"],
                deleted_by=row["updated_by"] if deleted else "",
            )
        )
    return changes


def prune_deleted(db: sqlite_utils.Database, *, older_than: float) -> int:
    """Forget tombstones of jobs deleted before ``older_than``; raises the history floor."""
    with db.atomic():
        rows = db.execute(
            "SELECT seq FROM jobs WHERE deleted_at IS NOT NULL AND deleted_at < ?", [older_than]
        ).fetchall()
        if rows:
            db.execute(
                "DELETE FROM jobs WHERE deleted_at IS NOT NULL AND deleted_at < ?", [older_than]
            )
            raise_history_floor(db, max(r[0] for r in rows) + 1)
    return len(rows)


def _row(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    found = db.execute(f"{_SELECT} WHERE name = ?", [name]).fetchone()
    return None if found is None else dict(zip(_COLUMNS, found, strict=True))


def _record(row: dict[str, Any]) -> JobRecord:
    return JobRecord(
        job=msgspec.json.decode(row["definition"], type=Job),
        version=row["version"],
        source=row["source"],
        definition_hash=row["definition_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )
