"""``jobs.d`` -> the store: what a reload (start-up, SIGHUP, ``squ-agentd reload``) changes.

The store is the agent's one job table; files are one source of jobs (stored
with ``source = "file:<path>"``), the console another. A reload puts every job
the files declare (an unchanged definition is a no-op in the store), and
deletes a file-declared job only when its file was read without error and no
longer declares it, or the file is gone. A file with an error is reported and
the jobs it held keep their last good definition, which the store holds even
across agent restarts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agentd.jobsdir import JobsDir
from agentd.store import Store
from agentd.store import jobs as jobs_sql
from shared.models import JobRecord

__all__ = ["jobs_dir_of", "load_table", "sync_jobs_dir"]

_dirs: dict[Path, JobsDir] = {}


def jobs_dir_of(config: Any) -> Path:
    """Where this agent's ``jobs.d`` is: the config's choice, else beside the data."""
    found = getattr(config, "jobs_dir", None)
    return Path(found) if found else Path(config.data_dir) / "jobs.d"


async def sync_jobs_dir(store: Store, config: Any, *, now: float) -> dict[str, Any]:
    """Load ``jobs.d`` and apply it to the store; returns added/changed/removed/kept/errors."""
    path = jobs_dir_of(config)
    # One JobsDir per path for the agent's life: it remembers each file's last good jobs.
    jobs_dir = _dirs.setdefault(path, JobsDir(path))
    loaded = await asyncio.to_thread(jobs_dir.load)
    declared: dict[str, tuple[Any, str]] = {
        name: (entry.job, f"file:{entry.file}") for name, entry in loaded.jobs.items()
    }
    broken_files = {str(err.file) for err in loaded.errors}
    errors = [{"file": str(err.file), "message": _message(err)} for err in loaded.errors]
    return await store.call(_apply, declared, broken_files, errors, now)


def _message(err: Any) -> str:
    return str(getattr(err, "message", None) or err)


def _apply(
    db: Any,
    declared: dict[str, tuple[Any, str]],
    broken_files: set[str],
    errors: list[dict[str, str]],
    now: float,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "added": [],
        "changed": [],
        "removed": [],
        "kept": [],
        "errors": errors,
    }
    with db.atomic():
        existing = {rec.job.name: rec for rec in jobs_sql.list_jobs(db)}
        for name, (job, source) in sorted(declared.items()):
            before = existing.get(name)
            try:
                after = jobs_sql.put_job(db, job, source=source, now=now, by=source)
            except Exception as exc:  # e.g. the console already owns a job of that name
                errors.append({"file": source.removeprefix("file:"), "message": str(exc)})
                continue
            if before is None:
                result["added"].append(name)
            elif after.version != before.version:
                result["changed"].append(name)
        for name, rec in sorted(existing.items()):
            if not rec.source.startswith("file:") or name in declared:
                continue
            if _is_under_error(rec.source.removeprefix("file:"), broken_files):
                result["kept"].append(name)  # last good definition stays
                continue
            jobs_sql.delete_job(db, name, now=now, by="jobs.d reload")
            result["removed"].append(name)
    return result


def _is_under_error(path: str, broken: set[str]) -> bool:
    """Whether the file at ``path`` (or its directory) had an error on this load."""
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in broken)


async def load_table(store: Store) -> dict[str, JobRecord]:
    """Every live job in the store, by name: the table the scheduler and executor use."""
    records = await store.call(jobs_sql.list_jobs)
    return {rec.job.name: rec for rec in records}
