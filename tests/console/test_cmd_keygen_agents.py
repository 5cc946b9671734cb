"""squ keygen and squ agents, run as a user would (real subprocess for ssh-keygen interop)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from console.cli import main


def test_keygen_writes_an_openssh_key_ssh_keygen_reads(tmp_path: Path) -> None:
    """The key squ makes is a real OpenSSH key: ssh-keygen derives the same public line."""
    assert main(["--config-dir", str(tmp_path), "keygen", "-C", "alice"]) == 0
    key = tmp_path / "id_ed25519"
    assert key.stat().st_mode & 0o777 == 0o600
    public = (tmp_path / "id_ed25519.pub").read_text().split()
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert derived[:2] == public[:2]
    assert public[2] == "alice"


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second keygen without --force keeps the first key and says how to replace it."""
    assert main(["--config-dir", str(tmp_path), "keygen"]) == 0
    before = (tmp_path / "id_ed25519").read_bytes()
    assert main(["--config-dir", str(tmp_path), "keygen"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "id_ed25519").read_bytes() == before


def test_agents_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Agents added show in list --json with their labels; remove takes them out."""
    cfg = ["--config-dir", str(tmp_path)]
    assert main([*cfg, "agents", "add", "db1", "wss://db1:7421", "--label", "role=db"]) == 0
    assert main([*cfg, "agents", "add", "local", "ws://127.0.0.1:7421"]) == 0
    capsys.readouterr()
    assert main([*cfg, "agents", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["labels"]) for r in rows] == [("db1", {"role": "db"}), ("local", {})]
    assert main([*cfg, "agents", "remove", "db1"]) == 0
    capsys.readouterr()
    assert main([*cfg, "agents", "list", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["local"]


def test_agents_add_refuses_plain_ws_to_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adding ws:// to a non-loopback host fails with the reason and writes nothing."""
    assert main(["--config-dir", str(tmp_path), "agents", "add", "db1", "ws://db1:7421"]) == 2
    assert "only on loopback" in capsys.readouterr().err
    assert not (tmp_path / "fleet.toml").exists()
