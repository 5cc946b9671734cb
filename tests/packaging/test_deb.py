"""The .deb: its metadata, an install into a scratch root, the agent started, removal and purge.

Never installs into the real system root: ``dpkg --root=SCRATCH`` with
``--force-script-chrootless`` runs the maintainer scripts with ``DPKG_ROOT``
set, and they write only under it (systemd is left alone when DPKG_ROOT is set).
"""

from __future__ import annotations

import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from agentd import control
from tests.e2e.agentkit import wait_for
from tests.packaging.pkgkit import clean_env, set_config, start_serve

pytestmark = [
    pytest.mark.timeout(300),  # the first test builds the artifacts (session fixture)
    pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg absent"),
]


def _deb(dist: Path) -> Path:
    [deb] = dist.glob("squ-agentd_*_all.deb")
    return deb


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        "dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
        "--log=/dev/null", *args,
    ]  # fmt: skip
    env = clean_env(SHIV_ROOT=str(root / "var/cache/squ-agentd"))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def _scratch_root(path: Path) -> Path:
    for sub in ("info", "updates", "triggers"):
        (path / "var/lib/dpkg" / sub).mkdir(parents=True)
    (path / "var/lib/dpkg/status").touch()
    (path / "var/lib/dpkg/available").touch()
    return path


def test_package_metadata(dist: Path) -> None:
    """Name, version, architecture all, a python3 dependency and the config as a conffile."""
    deb = _deb(dist)
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True).stdout
    assert "Package: squ-agentd" in info
    assert "Architecture: all" in info
    assert "Depends: python3 (>= 3.11)" in info
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True
    )
    assert (
        b"conffiles"
        in subprocess.run(["tar", "-t"], input=conffiles.stdout, capture_output=True).stdout
    )
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True).stdout
    for path in (
        "./usr/bin/squ-agentd",
        "./usr/lib/squ-agentd/squ-agentd.pyz",
        "./lib/systemd/system/squ-agentd.service",
        "./etc/squ-agentd/agentd.toml",
        "./usr/share/doc/squ-agentd/operations.md",
    ):
        assert path in listing
    assert "root/root" in listing and "1980-01-01" in listing  # owned by root, reproducible


def test_install_start_remove_purge_in_scratch_root(dist: Path, reaper: Path) -> None:
    """Install runs init (fingerprint); the command serves a job; upgrade, remove, purge clean."""
    root = _scratch_root(reaper / "root")
    installed = _dpkg(root, "-i", str(_deb(dist)))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "certificate fingerprint: SHA256:" in installed.stdout
    data = root / "var/lib/squ-agentd"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "agentd.toml").resolve() == root / "etc/squ-agentd/agentd.toml"
    for made in ("agentd.db", "tls/agent.crt", "authorized_operators"):
        assert (data / made).exists(), made

    # Start it the way the unit would, where systemd is absent: run the installed command.
    config = root / "etc/squ-agentd/agentd.toml"
    set_config(config, "jobs", "dir", f'"{root}/etc/squ-agentd/jobs.d"')
    set_config(config, "server", "port", "0")
    (root / "etc/squ-agentd/jobs.d/hello.toml").write_text('[job.hello]\ncommand = "echo hi"\n')
    env = clean_env(SHIV_ROOT=str(root / "var/cache/squ-agentd"))
    agent = [str(root / "usr/bin/squ-agentd")]
    proc = start_serve(agent, data, env)
    try:
        wait_for(lambda: _answers(data) or proc.poll() is not None, timeout_s=60, what="agent")
        assert proc.poll() is None, (reaper / "serve.stderr").read_text()
        run = subprocess.run(
            [*agent, "run", "hello", "--wait", "--data-dir", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, (reaper / "serve.stderr").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()

    # An upgrade (here: the same package again) keeps the store and the edited config,
    # and does not run init again.
    upgraded = _dpkg(root, "-i", str(_deb(dist)))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "certificate fingerprint" not in upgraded.stdout
    assert "port = 0" in config.read_text()  # the operator's edit survived
    assert (data / "agentd.db").exists()

    removed = _dpkg(root, "--remove", "squ-agentd")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "usr/bin/squ-agentd").exists()
    assert not (root / "usr/lib/squ-agentd").exists()
    assert not (root / "lib/systemd/system/squ-agentd.service").exists()
    assert (root / "etc/squ-agentd/agentd.toml").exists()  # a conffile stays until purge
    assert (data / "agentd.db").exists()

    purged = _dpkg(root, "--purge", "squ-agentd")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/squ-agentd/agentd.toml").exists()
    assert not (root / "var/cache/squ-agentd").exists()
    assert (data / "agentd.db").exists()  # history is never purged silently
    assert "kept" in purged.stdout


def _answers(data: Path) -> bool:
    try:
        control.request(control.socket_path(data), "status", None)
    except control.DaemonNotRunning:
        return False
    return True
