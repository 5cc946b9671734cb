"""``squ-agentd check``: offline validation of agentd.toml and job files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agentd.commands import check


def run_check(argv: list[str]) -> int:
    # Built here rather than through agentd.cli until "check" is in cli.COMMANDS.
    parser = argparse.ArgumentParser(prog="squ-agentd")
    check.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", *argv])
    return int(args.func(args))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "jobs.d").mkdir(parents=True)
    (data / "jobs.d").chmod(0o755)
    return data


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_valid_data_dir_passes(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid config and jobs.d exit 0 and say how many jobs were found."""
    write(data / "jobs.d" / "a.toml", '[job.a]\ncommand = "true"\n[job.b]\ncommand = "true"\n')
    assert run_check(["--data-dir", str(data)]) == 0
    assert capsys.readouterr().out == "ok: 2 job(s) in 1 file(s)\n"


def test_every_problem_is_listed(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Config errors, bad jobs and duplicate names are all reported, exit 1."""
    write(data / "agentd.toml", "[server]\nport = -1\n")
    write(data / "jobs.d" / "a.toml", '[job.a]\ncommand = "true"\ncron = "61 * * * *"\n')
    write(data / "jobs.d" / "b.toml", '[job.c]\ncommand = "true"\n')
    write(data / "jobs.d" / "c.toml", '[job.c]\ncommand = "true"\n')
    assert run_check(["--data-dir", str(data)]) == 1
    out = capsys.readouterr()
    assert "agentd.toml:2: server.port: " in out.err
    assert "a.toml:3 [job.a]: cron: " in out.err
    assert "job 'c' is also defined in" in out.err
    assert out.out == "3 problem(s): 1 job(s) in 1 file(s)\n"


def test_named_files_are_checked_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given FILEs, only they are checked, including names duplicated between them."""
    a = write(tmp_path / "a.toml", '[job.x]\ncommand = "true"\n')
    b = write(tmp_path / "b.toml", '[job.x]\ncommand = "true"\n')
    assert run_check([str(a)]) == 0
    assert run_check([str(a), str(b)]) == 1
    assert f"{b}: job 'x' is also defined in {a}" in capsys.readouterr().err


def test_json_output(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives ok, the jobs with their files, and the errors."""
    path = write(data / "jobs.d" / "a.toml", '[job.a]\ncommand = "true"\n')
    assert run_check(["--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "jobs": {"a": str(path)},
        "errors": [],
    }
