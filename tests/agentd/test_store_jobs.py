"""Job definitions in the store: versions, hashes, conflicts, file-declared jobs, tombstones."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from agentd.store import Store, executions, jobs
from agentd.store.errors import JobDeclaredInFile
from shared.errors import Conflict, UnknownJob
from tests.agentd.storekit import T0, job, open_store

FILE = "file:/etc/squ-agentd/jobs.d/backup.toml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def test_put_creates_version_one_with_canonical_hash(store: Store) -> None:
    """A new job is version 1; its hash is sha256 of its sorted-key JSON."""
    rec = store.call_sync(jobs.put_job, job(), source="console", now=T0, by="alice")
    expected = hashlib.sha256(msgspec.json.encode(job(), order="sorted")).hexdigest()
    assert (rec.version, rec.definition_hash, rec.updated_by) == (1, expected, "alice")
    assert store.call_sync(jobs.get_job, "backup") == rec


def test_edit_bumps_version_and_keeps_created_at(store: Store) -> None:
    """Changing the definition gives version 2, a new hash, the old created_at."""
    first = store.call_sync(jobs.put_job, job(), source="console", now=T0)
    second = store.call_sync(
        jobs.put_job, job(timeout_s=60), source="console", now=T0 + 5, expected_version=1
    )
    assert (second.version, second.created_at, second.updated_at) == (2, T0, T0 + 5)
    assert second.definition_hash != first.definition_hash


def test_identical_put_changes_nothing(store: Store) -> None:
    """Putting the same definition from the same source keeps the version (quiet reloads)."""
    first = store.call_sync(jobs.put_job, job(), source=FILE, now=T0)
    again = store.call_sync(jobs.put_job, job(), source=FILE, now=T0 + 9)
    assert again == first
    assert len(store.call_sync(jobs.changes_since, 0, 10)) == 1


def test_stale_version_names_who_changed_it_and_when(store: Store) -> None:
    """An edit from version 1 after bob saved version 2 is a Conflict naming bob and the time."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0, by="alice")
    store.call_sync(
        jobs.put_job, job(timeout_s=5), source="console", now=T0 + 60, by="bob", expected_version=1
    )
    with pytest.raises(Conflict) as caught:
        store.call_sync(
            jobs.put_job, job(timeout_s=9), source="console", now=T0 + 99, expected_version=1
        )
    assert caught.value.message == (
        "job 'backup' was changed by bob at 2026-09-21 14:14:20Z (now version 2); "
        "your edit was based on version 1: reload it and apply again"
    )
    assert store.call_sync(jobs.get_job, "backup").job.timeout_s == 5  # type: ignore[union-attr]


def test_create_only_refuses_existing_job(store: Store) -> None:
    """expected_version=0 means "create": an existing job is a Conflict."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0, by="alice")
    with pytest.raises(Conflict, match="changed by alice"):
        store.call_sync(jobs.put_job, job(), source="console", now=T0, expected_version=0)


def test_edit_of_deleted_job_says_deleted(store: Store) -> None:
    """Editing version 1 of a job carol deleted is a Conflict saying carol deleted it."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0)
    store.call_sync(jobs.delete_job, "backup", now=T0 + 1, by="carol")
    with pytest.raises(Conflict, match="deleted by carol"):
        store.call_sync(jobs.put_job, job(), source="console", now=T0 + 2, expected_version=1)


def test_file_declared_job_cannot_be_replaced_from_console(store: Store) -> None:
    """A console put over a jobs.d job is refused, naming the file to edit."""
    store.call_sync(jobs.put_job, job(), source=FILE, now=T0)
    with pytest.raises(JobDeclaredInFile, match=r"/etc/squ-agentd/jobs\.d/backup\.toml"):
        store.call_sync(jobs.put_job, job(timeout_s=1), source="console", now=T0)


def test_set_enabled_makes_a_new_version(store: Store) -> None:
    """Disabling a job stores enabled=False as version 2; disabling again changes nothing."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0)
    off = store.call_sync(jobs.set_enabled, "backup", False, now=T0 + 1, by="dave")
    again = store.call_sync(jobs.set_enabled, "backup", False, now=T0 + 2, by="dave")
    assert (off.job.enabled, off.version, off.updated_by) == (False, 2, "dave")
    assert again == off


def test_set_enabled_on_unknown_job_raises(store: Store) -> None:
    """set_enabled on a name never stored raises UnknownJob naming it."""
    with pytest.raises(UnknownJob, match="'ghost'"):
        store.call_sync(jobs.set_enabled, "ghost", True, now=T0, by="x")


def test_delete_leaves_tombstone_in_changes(store: Store) -> None:
    """A deleted job is gone from lists but shows in changes_since as deleted, with who."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0)
    store.call_sync(jobs.put_job, job("rotate"), source="console", now=T0)
    store.call_sync(jobs.delete_job, "backup", now=T0 + 1, by="erin")
    assert [r.job.name for r in store.call_sync(jobs.list_jobs)] == ["rotate"]
    assert store.call_sync(jobs.get_job, "backup") is None
    last = store.call_sync(jobs.changes_since, 0, 10)[-1]
    assert (last.name, last.record, last.deleted_at, last.deleted_by) == (
        "backup",
        None,
        T0 + 1,
        "erin",
    )


def test_delete_unknown_job_raises(store: Store) -> None:
    """Deleting a job that does not exist raises UnknownJob."""
    with pytest.raises(UnknownJob):
        store.call_sync(jobs.delete_job, "ghost", now=T0, by="x")


def test_recreated_job_continues_version(store: Store) -> None:
    """A job re-created after deletion gets a version above its tombstone's."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0)
    store.call_sync(jobs.delete_job, "backup", now=T0, by="x")
    rec = store.call_sync(jobs.put_job, job(), source="console", now=T0 + 1, expected_version=0)
    assert (rec.version, rec.created_at) == (3, T0 + 1)


def test_prune_deleted_forgets_old_tombstones_and_moves_floor(store: Store) -> None:
    """Old tombstones are dropped and the history floor rises past them."""
    store.call_sync(jobs.put_job, job(), source="console", now=T0)
    store.call_sync(jobs.delete_job, "backup", now=T0, by="x")
    seq = store.call_sync(jobs.changes_since, 0, 10)[-1].seq
    assert store.call_sync(jobs.prune_deleted, older_than=T0 + 1) == 1
    assert store.call_sync(jobs.changes_since, 0, 10) == []
    assert store.call_sync(executions.history_floor) == seq + 1
