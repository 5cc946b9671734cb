"""``jobs.d/*.toml``: jobs declared in files, with last-good semantics per file.

Teams that manage servers with configuration management drop job files into
the agent's ``jobs.d``. The agent calls :meth:`JobsDir.load` at start-up, on
SIGHUP and on ``squ-agentd reload``, then applies the result to its store
(``agentd.jobsync``). Rules, each kept by a test:

* a file with an error (TOML syntax, a bad field, unsafe permissions,
  unreadable) is reported, and the jobs it held keep their last good
  definition: a typo pushed by Puppet never silently stops a backup;
* a removed file removes its jobs;
* a job name declared in two files is an error naming both; the file that
  already owned the name keeps it (else the first file in name order), so a
  new file can never take over a running job;
* files the agent would run as root must not be writable by anyone else:
  a file, ``jobs.d`` or any directory above it that is group/world-writable
  (without the sticky bit) or owned by another user is refused.

Parsing one file's text is pure and lives in ``shared.jobs.parse_jobs_toml``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.jobs import InvalidJobFile, parse_jobs_toml
from shared.models import Job

__all__ = ["MAX_FILE_BYTES", "FileError", "FileJob", "JobsDir", "JobsDirResult"]

MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class FileJob:
    """A job and the file that declares it (the console shows it and refuses edits)."""

    job: Job
    file: Path

    @property
    def source(self) -> str:
        """The store's ``JobRecord.source`` for this job."""
        return f"file:{self.file}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileError:
    """A problem with one file; ``kept`` names the jobs left at their last good definition."""

    file: Path
    message: str
    kept: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsDirResult:
    """What the files declare now: every usable job, and every problem to report."""

    jobs: dict[str, FileJob] = field(default_factory=dict)
    errors: list[FileError] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


class JobsDir:
    """One agent's ``jobs.d``; keep one instance for the agent's life (it remembers last good).

    ``load()`` does blocking file I/O: from asyncio, call it through
    ``asyncio.to_thread``.
    """

    def __init__(self, path: Path, *, owners: Mapping[str, Path] | None = None) -> None:
        """``owners``: job name -> file that declared it before (e.g. from the store's
        ``file:`` sources at start-up), so a file added while the agent was down cannot
        take over a job another file already declared.
        """
        self.path = Path(path)
        self._good: dict[Path, tuple[Job, ...]] = {}
        self._owner: dict[str, Path] = {name: Path(file) for name, file in (owners or {}).items()}
        # path -> (sha256 of the bytes, what parsing them gave): an unchanged file is not
        # parsed again, so a reload of a large jobs.d costs reads, not parses.
        self._parsed: dict[Path, tuple[bytes, tuple[Job, ...] | InvalidJobFile]] = {}

    def load(self) -> JobsDirResult:
        """Read every ``*.toml`` file now and return the jobs to run and the errors to report."""
        errors: list[FileError] = []
        files, dir_error = self._list_files()
        if dir_error is not None:
            # The directory itself is unsafe or unreadable: trust none of it, keep what we had.
            kept = tuple(sorted(self._owner))
            errors.append(FileError(file=self.path, message=dir_error, kept=kept))
            return JobsDirResult(jobs=self._merge(errors), errors=errors, files=[])

        present = set(files)
        for gone in [p for p in self._good if p not in present]:
            del self._good[gone]  # a removed file removes its jobs
        for gone in [p for p in self._parsed if p not in present]:
            del self._parsed[gone]
        for path in files:
            try:
                self._good[path] = self._read(path)
            except InvalidJobFile as exc:
                kept = tuple(job.name for job in self._good.get(path, ()))
                message = exc.message
                if kept:
                    message += f"\n{path}: kept the last good definition of: {', '.join(kept)}"
                errors.append(FileError(file=path, message=message, kept=kept))
        return JobsDirResult(jobs=self._merge(errors), errors=errors, files=files)

    def _list_files(self) -> tuple[list[Path], str | None]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return [], None  # no jobs.d: no file jobs, nothing wrong
        except OSError as exc:
            return [], f"{self.path}: cannot read the jobs directory: {exc.strerror}"
        if not stat.S_ISDIR(info.st_mode):
            return [], f"{self.path}: is not a directory"
        unsafe = _unsafe(info, self.path) or _unsafe_ancestor(self.path)
        if unsafe is not None:
            return [], unsafe
        try:
            names = sorted(os.listdir(self.path))
        except OSError as exc:
            return [], f"{self.path}: cannot list the jobs directory: {exc.strerror}"
        # Editors' and config managers' temporaries (.x.toml.swp, .#x.toml, x.toml~) are skipped.
        return [self.path / n for n in names if n.endswith(".toml") and not n.startswith(".")], None

    def _read(self, path: Path) -> tuple[Job, ...]:
        where = str(path)
        try:
            # Follows a symlink on purpose (config management often links files in);
            # the target's owner and mode are what count.
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidJobFile(where, [f"{where}: is not a regular file"])
            unsafe = _unsafe(info, path)
            if unsafe is not None:
                raise InvalidJobFile(where, [unsafe])
            if info.st_size > MAX_FILE_BYTES:
                raise InvalidJobFile(
                    where, [f"{where}: {info.st_size} bytes; the limit is {MAX_FILE_BYTES}"]
                )
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidJobFile(where, [f"{where}: cannot read: {exc.strerror}"]) from None
        digest = hashlib.sha256(data).digest()
        cached = self._parsed.get(path)
        if cached is None or cached[0] != digest:
            cached = (digest, _parse(data, where))
            self._parsed[path] = cached
        if isinstance(cached[1], InvalidJobFile):
            raise InvalidJobFile(where, cached[1].problems)
        return cached[1]

    def _merge(self, errors: list[FileError]) -> dict[str, FileJob]:
        """One owner per job name; a name claimed by two files is an error naming both."""
        claims: dict[str, list[tuple[Path, Job]]] = {}
        for path in sorted(self._good):
            for job in self._good[path]:
                claims.setdefault(job.name, []).append((path, job))
        jobs: dict[str, FileJob] = {}
        for name, claimants in claims.items():
            paths = [p for p, _ in claimants]
            previous = self._owner.get(name)
            owner = previous if previous in paths else paths[0]
            job = next(j for p, j in claimants if p == owner)
            jobs[name] = FileJob(job=job, file=owner)
            errors.extend(
                FileError(
                    file=other,
                    message=(
                        f"{other}: job {name!r} is also defined in {owner}; job names are "
                        f"unique on an agent, so the one in {owner} is used"
                    ),
                )
                for other in paths
                if other != owner
            )
        self._owner = {name: entry.file for name, entry in jobs.items()}
        return jobs


def _unsafe(info: os.stat_result, path: Path) -> str | None:
    """Why a job file or directory cannot be trusted, or None: jobs may run as root."""
    if info.st_uid not in (0, os.geteuid()):
        return (
            f"{path}: owned by uid {info.st_uid}; only root or the agent's user may own "
            "job files (they may run as root)"
        )
    if info.st_mode & 0o022:
        return (
            f"{path}: writable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod go-w {path}"
        )
    return None


def _unsafe_ancestor(path: Path) -> str | None:
    """Like sshd's StrictModes: whoever can write a parent directory can swap jobs.d itself.

    A world-writable parent is fine only with the sticky bit (/tmp): then others
    cannot rename what they do not own.
    """
    for parent in Path(os.path.realpath(path)).parents:
        try:
            info = os.stat(parent)
        except OSError as exc:
            return f"{parent}: cannot check the directory: {exc.strerror}"
        if info.st_uid not in (0, os.geteuid()):
            return (
                f"{parent}: owned by uid {info.st_uid}, who could replace {path}; "
                "only root or the agent's user may own the directories above job files"
            )
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            return (
                f"{parent}: writable by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}), who could replace {path}; "
                f"run: chmod go-w {parent}"
            )
    return None


def _parse(data: bytes, where: str) -> tuple[Job, ...] | InvalidJobFile:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return InvalidJobFile(where, [f"{where}:{line}: not valid UTF-8"])
    try:
        return tuple(parse_jobs_toml(text, where=where))
    except InvalidJobFile as exc:
        return exc
