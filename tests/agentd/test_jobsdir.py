"""jobs.d loading: last good definition per file, duplicates, removals and unsafe files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentd.jobsdir import JobsDir


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def job_toml(name: str, cron: str = "0 3 * * *", command: str = "true") -> str:
    return f'[job.{name}]\ncommand = "{command}"\ncron = "{cron}"\n'


@pytest.fixture
def jobs_d(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.d"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def test_jobs_from_several_files_carry_their_file(jobs_d: Path) -> None:
    """Every job of every *.toml file is loaded, each with the file that declares it."""
    a = write(jobs_d / "a.toml", job_toml("backup") + job_toml("vacuum"))
    b = write(jobs_d / "b.toml", job_toml("rotate"))
    result = JobsDir(jobs_d).load()
    assert result.errors == []
    assert {n: j.file for n, j in result.jobs.items()} == {"backup": a, "vacuum": a, "rotate": b}
    assert result.jobs["rotate"].source == f"file:{b}"


def test_missing_directory_means_no_jobs(tmp_path: Path) -> None:
    """No jobs.d at all is not an error: there are simply no file jobs."""
    result = JobsDir(tmp_path / "nope").load()
    assert (result.jobs, result.errors) == ({}, [])


def test_other_files_are_ignored(jobs_d: Path) -> None:
    """Hidden files, editor backups and non-TOML files are not read."""
    write(jobs_d / ".a.toml", "broken [")
    write(jobs_d / "a.toml~", "broken [")
    write(jobs_d / "README", "broken [")
    write(jobs_d / "ok.toml", job_toml("ok"))
    result = JobsDir(jobs_d).load()
    assert (list(result.jobs), result.errors) == (["ok"], [])


def test_broken_file_keeps_last_good_jobs(jobs_d: Path) -> None:
    """After a bad edit the file's jobs keep their last good definition, and the error says so."""
    path = write(jobs_d / "a.toml", job_toml("backup", "0 3 * * *") + job_toml("vacuum"))
    jobs_dir = JobsDir(jobs_d)
    before = jobs_dir.load().jobs
    write(path, job_toml("backup", "0 4 * * *") + '[job.vacuum]\ncommand = "true"\ncron = "99"\n')
    result = jobs_dir.load()
    assert result.jobs == before
    (error,) = result.errors
    assert error.file == path
    assert error.kept == ("backup", "vacuum")
    assert f"{path}:6 [job.vacuum]: cron: " in error.message
    assert "kept the last good definition of: backup, vacuum" in error.message


def test_syntax_error_names_file_and_line(jobs_d: Path) -> None:
    """A TOML syntax error names the file and the line."""
    path = write(jobs_d / "a.toml", '[job.a]\ncommand = "true"\ncron = "@daily\n')
    (error,) = JobsDir(jobs_d).load().errors
    assert error.message.startswith(f"{path}:3:")


def test_broken_file_on_first_load_holds_no_jobs(jobs_d: Path) -> None:
    """A file that was never good contributes no jobs, only its error."""
    write(jobs_d / "a.toml", "[job.a]\ncommand = 3\n")
    write(jobs_d / "b.toml", job_toml("b"))
    result = JobsDir(jobs_d).load()
    assert list(result.jobs) == ["b"]
    assert [e.kept for e in result.errors] == [()]


def test_fixed_file_takes_effect(jobs_d: Path) -> None:
    """Fixing a broken file loads its new definitions and clears the error."""
    path = write(jobs_d / "a.toml", job_toml("backup", "0 3 * * *"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    write(path, "oops")
    assert jobs_dir.load().errors
    write(path, job_toml("backup", "30 2 * * *"))
    result = jobs_dir.load()
    assert result.errors == []
    assert result.jobs["backup"].job.cron == "30 2 * * *"


def test_removed_file_removes_its_jobs(jobs_d: Path) -> None:
    """Deleting a file removes the jobs it declared, even if it was broken before."""
    path = write(jobs_d / "a.toml", job_toml("backup"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    write(path, "oops")
    jobs_dir.load()
    path.unlink()
    assert jobs_dir.load().jobs == {}


def test_removed_job_in_good_file_disappears(jobs_d: Path) -> None:
    """A job deleted from a file that still parses is gone after reload."""
    path = write(jobs_d / "a.toml", job_toml("backup") + job_toml("vacuum"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    write(path, job_toml("backup"))
    assert list(jobs_dir.load().jobs) == ["backup"]


def test_duplicate_name_names_both_files(jobs_d: Path) -> None:
    """A job name in two files is an error naming both; the first file in name order keeps it."""
    a = write(jobs_d / "a.toml", job_toml("backup", "0 1 * * *"))
    b = write(jobs_d / "b.toml", job_toml("backup", "0 2 * * *") + job_toml("other"))
    result = JobsDir(jobs_d).load()
    assert result.jobs["backup"].file == a
    assert "other" in result.jobs
    (error,) = result.errors
    assert error.file == b
    assert str(a) in error.message
    assert str(b) in error.message


def test_existing_owner_keeps_a_name_a_new_file_claims(jobs_d: Path) -> None:
    """A new file cannot take over a job another file already declared, whatever its name."""
    z = write(jobs_d / "z.toml", job_toml("backup", "0 1 * * *"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    a = write(jobs_d / "a.toml", job_toml("backup", "0 2 * * *"))
    result = jobs_dir.load()
    assert result.jobs["backup"].file == z
    assert [e.file for e in result.errors] == [a]


def test_group_writable_file_is_refused(jobs_d: Path) -> None:
    """A job file others can write is refused (jobs may run as root) and says how to fix it."""
    path = write(jobs_d / "a.toml", job_toml("backup"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    path.chmod(0o664)
    result = jobs_dir.load()
    assert "backup" in result.jobs  # last good kept
    assert f"chmod go-w {path}" in result.errors[0].message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_file_owned_by_another_user_is_refused(jobs_d: Path) -> None:
    """A job file owned by someone other than root or the agent's user is refused."""
    path = write(jobs_d / "a.toml", job_toml("backup"))
    os.chown(path, 65534, 65534)
    result = JobsDir(jobs_d).load()
    assert result.jobs == {}
    assert "owned by uid 65534" in result.errors[0].message


def test_world_writable_directory_is_refused_and_keeps_jobs(jobs_d: Path) -> None:
    """A jobs.d anyone can write is not read; the jobs loaded before stay."""
    write(jobs_d / "a.toml", job_toml("backup"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    jobs_d.chmod(0o777)
    result = jobs_dir.load()
    assert list(result.jobs) == ["backup"]
    assert result.errors[0].file == jobs_d
    assert "writable by group or others (mode 0777)" in result.errors[0].message


def test_non_utf8_file_names_the_line(jobs_d: Path) -> None:
    """A file that is not UTF-8 is reported with the line of the first bad byte."""
    path = jobs_d / "a.toml"
    path.write_bytes(b'[job.a]\ncommand = "caf\xe9"\n')
    (error,) = JobsDir(jobs_d).load().errors
    assert error.message == f"{path}:2: not valid UTF-8"


def test_symlinked_file_is_followed(jobs_d: Path, tmp_path: Path) -> None:
    """A symlink into jobs.d (as config management makes) is read through to its target."""
    target = write(tmp_path / "managed.toml", job_toml("managed"))
    (jobs_d / "managed.toml").symlink_to(target)
    assert list(JobsDir(jobs_d).load().jobs) == ["managed"]


def test_unchanged_file_is_not_parsed_again(jobs_d: Path) -> None:
    """A reload reuses the jobs of a file whose bytes did not change."""
    write(jobs_d / "a.toml", job_toml("backup"))
    jobs_dir = JobsDir(jobs_d)
    first = jobs_dir.load().jobs["backup"].job
    assert jobs_dir.load().jobs["backup"].job is first


def test_same_size_edit_is_seen(jobs_d: Path) -> None:
    """An edit that keeps the file's size and mtime is still picked up (content, not stat)."""
    path = write(jobs_d / "a.toml", job_toml("backup", "0 3 * * *"))
    jobs_dir = JobsDir(jobs_d)
    jobs_dir.load()
    info = path.stat()
    write(path, job_toml("backup", "0 4 * * *"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert jobs_dir.load().jobs["backup"].job.cron == "0 4 * * *"


def test_unchanged_broken_file_keeps_reporting(jobs_d: Path) -> None:
    """A broken file left as it is is reported again on every reload."""
    write(jobs_d / "a.toml", "oops")
    jobs_dir = JobsDir(jobs_d)
    first = jobs_dir.load().errors
    assert jobs_dir.load().errors == first != []


def test_store_and_shared_hash_a_definition_alike(jobs_d: Path) -> None:
    """The store's definition_hash equals shared.jobs.definition_hash (approvals sign it)."""
    from agentd.store import jobs as store_jobs
    from shared.jobs import definition_hash

    write(jobs_d / "a.toml", job_toml("backup") + '[job.backup.env]\nB = "2"\nA = "1"\n')
    job = JobsDir(jobs_d).load().jobs["backup"].job
    assert store_jobs.definition_hash(job) == definition_hash(job)


def test_writable_parent_directory_is_refused(tmp_path: Path) -> None:
    """A parent anyone can write (no sticky bit) could swap jobs.d, so it is refused."""
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)
    jobs_d = parent / "jobs.d"
    jobs_d.mkdir()
    jobs_d.chmod(0o755)
    write(jobs_d / "a.toml", job_toml("backup"))
    result = JobsDir(jobs_d).load()
    assert result.jobs == {}
    assert result.errors[0].message.startswith(f"{parent}: writable by group or others (mode 0777)")


def test_sticky_world_writable_parent_is_accepted(tmp_path: Path) -> None:
    """A sticky world-writable parent (like /tmp) is fine: others cannot rename jobs.d."""
    parent = tmp_path / "sticky"
    parent.mkdir()
    parent.chmod(0o1777)
    jobs_d = parent / "jobs.d"
    jobs_d.mkdir()
    jobs_d.chmod(0o755)
    write(jobs_d / "a.toml", job_toml("backup"))
    assert list(JobsDir(jobs_d).load().jobs) == ["backup"]


def test_owners_from_before_a_restart_are_kept(jobs_d: Path) -> None:
    """Seeded with the previous owners, a file added while the agent was down cannot take over."""
    z = write(jobs_d / "z.toml", job_toml("backup", "0 1 * * *"))
    a = write(jobs_d / "a.toml", job_toml("backup", "0 2 * * *"))
    result = JobsDir(jobs_d, owners={"backup": z}).load()
    assert result.jobs["backup"].file == z
    assert [e.file for e in result.errors] == [a]
