"""jobs.d -> store: what a reload adds, changes, removes and keeps (real store, real files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentd import jobsync
from agentd.config import load_config
from agentd.store import Store
from agentd.store import jobs as jobs_sql
from shared.models import Job


@pytest.fixture
async def env(tmp_path: Path):
    data = tmp_path / "data"
    (data / "jobs.d").mkdir(parents=True)
    os.chmod(data / "jobs.d", 0o755)
    store = await Store.open(data / "agentd.db")
    # Each test gets its own JobsDir memory, as a fresh agent would.
    jobsync._dirs.clear()
    yield load_config(data), store
    await store.close()


def _write(config, name: str, text: str) -> Path:
    path = config.jobs_dir / name
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


async def _table(store) -> dict[str, str]:
    return {n: r.job.command for n, r in (await jobsync.load_table(store)).items()}


async def test_new_file_adds_its_jobs_with_file_source(env) -> None:
    """A new file's jobs are stored with source file:<path>."""
    config, store = env
    path = _write(config, "a.toml", '[job.a]\ncommand = "echo a"\n')
    result = await jobsync.sync_jobs_dir(store, config, now=1.0)
    assert result["added"] == ["a"]
    record = (await jobsync.load_table(store))["a"]
    assert record.source == f"file:{path}"


async def test_unchanged_reload_changes_nothing(env) -> None:
    """Reloading the same files reports no change and makes no new version."""
    config, store = env
    _write(config, "a.toml", '[job.a]\ncommand = "echo a"\n')
    await jobsync.sync_jobs_dir(store, config, now=1.0)
    result = await jobsync.sync_jobs_dir(store, config, now=2.0)
    assert (result["added"], result["changed"], result["removed"]) == ([], [], [])
    assert (await jobsync.load_table(store))["a"].version == 1


async def test_broken_file_keeps_last_good_even_after_restart(env) -> None:
    """A file with an error keeps its jobs' last good definition, also for a fresh agent."""
    config, store = env
    _write(config, "a.toml", '[job.a]\ncommand = "echo v1"\n')
    await jobsync.sync_jobs_dir(store, config, now=1.0)
    _write(config, "a.toml", '[job.a]\ncommand = "echo v2"\ncron = "nope"\n')
    jobsync._dirs.clear()  # a restarted agent: no last-good in memory, only the store
    result = await jobsync.sync_jobs_dir(store, config, now=2.0)
    assert result["kept"] == ["a"]
    assert "a.toml" in result["errors"][0]["message"]
    assert await _table(store) == {"a": "echo v1"}


async def test_removed_file_removes_its_jobs(env) -> None:
    """Deleting a file deletes the jobs it declared."""
    config, store = env
    path = _write(config, "a.toml", '[job.a]\ncommand = "true"\n')
    await jobsync.sync_jobs_dir(store, config, now=1.0)
    path.unlink()
    result = await jobsync.sync_jobs_dir(store, config, now=2.0)
    assert result["removed"] == ["a"]
    assert await _table(store) == {}


async def test_console_jobs_are_not_touched(env) -> None:
    """Jobs the console created are neither removed nor replaced by a reload."""
    config, store = env
    await store.call(jobs_sql.put_job, Job(name="c", command="true"), source="console", now=1.0)
    result = await jobsync.sync_jobs_dir(store, config, now=2.0)
    assert result["removed"] == []
    assert await _table(store) == {"c": "true"}


async def test_file_takes_over_a_console_job_of_the_same_name(env) -> None:
    """A file declaring a console job's name wins (files are authoritative), reported as changed."""
    config, store = env
    await store.call(jobs_sql.put_job, Job(name="c", command="console"), source="console", now=1.0)
    path = _write(config, "c.toml", '[job.c]\ncommand = "file"\n')
    result = await jobsync.sync_jobs_dir(store, config, now=2.0)
    assert result["changed"] == ["c"]
    record = (await jobsync.load_table(store))["c"]
    assert (record.job.command, record.source) == ("file", f"file:{path}")
