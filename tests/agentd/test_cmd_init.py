"""``squ-agentd init``: what it creates, where, and that running it twice is harmless."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_init_prints_what_it_created(tmp_path: Path) -> None:
    """init (the real entry point) lists every path it made and how to start the agent."""
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "agentd", "init", "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for rel in ("", "agentd.toml", "jobs.d", "runs", "logs", "agentd.db", "tls/agent.crt",
                "tls/agent.key", "authorized_operators"):  # fmt: skip
        path = data / rel if rel else data
        assert f"created  {path}\n" in out.stdout
        assert path.exists()
    assert "certificate fingerprint: SHA256:" in out.stdout
    assert f"squ-agentd serve --data-dir {data}" in out.stdout


def test_second_init_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second init reports everything as existing and keeps an edited config."""
    data = tmp_path / "data"
    assert main(["init", "--data-dir", str(data)]) == 0
    (data / "agentd.toml").write_text('[agent]\nname = "kept"\n')
    capsys.readouterr()
    assert main(["init", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "created" not in out
    assert f"exists   {data / 'tls' / 'agent.crt'}" in out
    assert f"exists   {data / 'agentd.toml'}" in out
    assert "nothing changed" in out
    assert (data / "agentd.toml").read_text() == '[agent]\nname = "kept"\n'


def test_init_uses_the_env_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --data-dir, init uses $SQU_AGENTD_DATA."""
    monkeypatch.setenv("SQU_AGENTD_DATA", str(tmp_path / "from-env"))
    assert main(["init"]) == 0
    assert (tmp_path / "from-env" / "agentd.toml").exists()


def test_relative_data_dir_is_printed_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A relative --data-dir is shown as the absolute path it resolved to."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--data-dir", "rel"]) == 0
    assert f"created  {tmp_path / 'rel' / 'agentd.toml'}" in capsys.readouterr().out


def test_init_where_it_cannot_create_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data dir that cannot be created gives a one-line reason naming it, exit 2."""
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "data"
    assert main(["init", "--data-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"squ-agentd init: {target}: cannot create: Not a directory\n"


def test_init_over_a_file_named_like_a_subdir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file where jobs.d should be is reported, not silently accepted."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "jobs.d").write_text("")
    assert main(["init", "--data-dir", str(data)]) == 2
    assert f"{data / 'jobs.d'}: exists and is not a directory" in capsys.readouterr().err
