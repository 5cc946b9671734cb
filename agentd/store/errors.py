"""Errors the store raises on purpose, each naming the database file or the row at fault."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shared.errors import Conflict, SquError

__all__ = [
    "InvalidField",
    "InvalidQuery",
    "JobDeclaredInFile",
    "StaleJobVersion",
    "StoreClosed",
    "StoreError",
    "StoreFull",
    "StoreTooNew",
    "StoreUnreadable",
]


class StoreError(SquError):
    """Something is wrong with the agent's database itself (not with one request)."""

    code = "store_error"


class StoreUnreadable(StoreError):
    """The file is not a SQLite database, is damaged, or cannot be opened."""

    code = "store_unreadable"

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(f"cannot open the agent database {str(path)!r}: {why}", path=str(path))


class StoreTooNew(StoreError):
    """The database was migrated by a newer squ-agentd; refusing beats guessing its schema."""

    code = "store_too_new"

    def __init__(self, path: Path | str, unknown: list[str]) -> None:
        names = ", ".join(unknown)
        super().__init__(
            f"the agent database {str(path)!r} was written by a newer squ-agentd "
            f"(unknown migrations: {names}); upgrade squ-agentd or restore an older backup",
            path=str(path),
            migrations=unknown,
        )


class StoreFull(StoreError):
    """The disk (or the database's page limit) is full: the change was rolled back, not lost."""

    code = "disk_full"

    def __init__(self, path: Path | str) -> None:
        super().__init__(
            f"the disk holding the agent database {str(path)!r} is full: the change was not "
            "recorded and no new work will start until space is freed",
            path=str(path),
        )


class StoreClosed(StoreError):
    """A call after ``Store.close()``: a shutdown-ordering bug in the caller."""

    code = "store_closed"

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"the agent database {str(path)!r} is closed", path=str(path))


class InvalidField(SquError):
    """Our own misuse: a field this call may not change, or a value of the wrong type."""

    code = "invalid_field"

    def __init__(
        self, field: str, where: str, why: str = "is not a field this call may change"
    ) -> None:
        super().__init__(f"{where}: {field!r} {why}", field=field, where=where)


class InvalidQuery(SquError):
    """A history filter that cannot be used (unknown status, bad limit); names the filter."""

    code = "invalid_query"

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}", filter=name)


class StaleJobVersion(Conflict):
    """An edit based on an old version of a job; names who changed it since and when."""

    def __init__(
        self, name: str, *, expected: int, actual: int, by: str, at: float, deleted: bool
    ) -> None:
        when = _utc(at)
        who = by or "someone"
        if deleted:
            what = f"job {name!r} was deleted by {who} at {when}"
        elif actual == 0:
            what = f"job {name!r} does not exist"
        else:
            what = f"job {name!r} was changed by {who} at {when} (now version {actual})"
        super().__init__(
            f"{what}; your edit was based on version {expected}: reload it and apply again",
            job=name,
            expected_version=expected,
            version=actual,
            by=by,
            at=at,
        )


class JobDeclaredInFile(Conflict):
    """A console edit of a job that a ``jobs.d`` file owns: the file is the place to edit it."""

    code = "job_declared_in_file"

    def __init__(self, name: str, source: str) -> None:
        path = source.removeprefix("file:")
        super().__init__(
            f"job {name!r} is declared in {path}; edit that file (then reload the agent)",
            job=name,
            source=source,
        )


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
