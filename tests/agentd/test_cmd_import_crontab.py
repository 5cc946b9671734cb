"""``squ-agentd import-crontab``: TOML on stdout or -o, problems on stderr, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.cli import main
from agentd.jobsdir import JobsDir
from shared.jobs import parse_jobs_toml

ROOT = Path(__file__).resolve().parents[2]

CRONTAB = """\
MAILTO=ops@example.com
# nightly
0 3 * * * /usr/local/bin/backup --full
*/15 * * * * /usr/local/bin/poll%payload
61 * * * * /bin/true
"""


def agentd(*argv: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentd", *argv],
        cwd=cwd,
        input=stdin,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_stdin_to_stdout_with_problems_on_stderr() -> None:
    """'-' reads stdin; the TOML goes to stdout; each bad line goes to stderr with its number."""
    out = agentd("import-crontab", "-", stdin=CRONTAB)
    assert out.returncode == 1
    jobs = parse_jobs_toml(out.stdout, where="stdout")
    assert [j.name for j in jobs] == ["backup", "poll"]
    assert "stdin:5: not converted: cron: minute field '61' is out of range 0-59" in out.stderr
    assert "    61 * * * * /bin/true" in out.stderr
    assert "2 job(s) converted, 1 line(s) not converted" in out.stderr


def test_clean_crontab_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A crontab whose every line converts exits 0 and says how many jobs it made."""
    path = tmp_path / "crontab"
    path.write_text("@hourly /usr/bin/true\n")
    assert main(["import-crontab", "--user", "alice", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err.strip() == "1 job(s) converted"
    assert "# Imported from " + str(path) in out.out


def test_output_file_is_a_loadable_jobs_d_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o writes a jobs.d file that the agent's jobs.d loader accepts as is."""
    jobs_d = tmp_path / "jobs.d"
    jobs_d.mkdir(mode=0o755)
    jobs_d.chmod(0o755)
    source = tmp_path / "crontab"
    source.write_text(CRONTAB)
    assert main(["import-crontab", str(source), "-o", str(jobs_d / "cron.toml")]) == 1
    assert capsys.readouterr().out == ""
    result = JobsDir(jobs_d).load()
    assert result.errors == []
    assert sorted(result.jobs) == ["backup", "poll"]
    assert result.jobs["backup"].job.labels == {"mailto": "ops@example.com"}


def test_output_file_is_not_overwritten_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing OUT is kept unless --force is given."""
    source = tmp_path / "crontab"
    source.write_text("@daily /bin/true\n")
    target = tmp_path / "out.toml"
    target.write_text("# mine\n")
    assert main(["import-crontab", str(source), "-o", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["import-crontab", str(source), "-o", str(target), "--force"]) == 0
    assert "[job.true]" in target.read_text()


def test_system_format_reads_the_user_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--system takes the word after the time fields as the run-as user."""
    path = tmp_path / "crontab"
    path.write_text("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    assert main(["import-crontab", "--system", str(path)]) == 0
    (job,) = parse_jobs_toml(capsys.readouterr().out, where="stdout")
    assert (job.name, job.user) == ("run-parts-cron.hourly", "root")


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A crontab that cannot be read gives one line naming it, exit 2."""
    assert main(["import-crontab", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"squ-agentd import-crontab: FILE: cannot read {tmp_path / 'nope'}: "
        "No such file or directory"
    )


def test_non_utf8_crontab_still_converts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Latin-1 byte in a crontab does not stop the import."""
    path = tmp_path / "crontab"
    path.write_bytes(b"@daily echo caf\xe9\n")
    assert main(["import-crontab", str(path)]) == 0
    (job,) = parse_jobs_toml(capsys.readouterr().out, where="stdout")
    assert job.command == "echo caf\ufffd"


def test_user_option_sets_run_as(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--user makes every job of a user crontab run as that user; with --system it is refused."""
    path = tmp_path / "crontab"
    path.write_text("@daily /bin/true\n")
    assert main(["import-crontab", "--user", "alice", str(path)]) == 0
    (job,) = parse_jobs_toml(capsys.readouterr().out, where="stdout")
    assert job.user == "alice"
    assert main(["import-crontab", "--system", "--user", "alice", str(path)]) == 2
    assert "--user: a system crontab names the user" in capsys.readouterr().err


def test_spool_file_name_is_the_user() -> None:
    """A crontab in cron's spool belongs to the user it is named after."""
    from agentd.commands.import_crontab import spool_owner

    assert spool_owner(Path("/var/spool/cron/crontabs/bob")) == "bob"
    assert spool_owner(Path("/var/spool/cron/alice")) == "alice"
    assert spool_owner(Path("/etc/crontab")) is None
    assert spool_owner(Path("/var/spool/cron/crontabs/.tmp")) is None


def test_user_crontab_without_user_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --user, the import warns that the jobs would run as the agent's user."""
    path = tmp_path / "crontab"
    path.write_text("@daily /bin/true\n")
    assert main(["import-crontab", str(path)]) == 0
    assert "warning: no --user given" in capsys.readouterr().err
