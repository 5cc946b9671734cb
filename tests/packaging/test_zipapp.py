"""The single-file agent runs on a server that has only python3: init, serve, a job, stop."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentd import control
from tests.e2e.agentkit import wait_for
from tests.packaging.pkgkit import clean_env, set_config, start_serve

SYSTEM_PYTHON = "/usr/bin/python3"


def _system_python_minor() -> str:
    if not Path(SYSTEM_PYTHON).exists():
        return ""
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip()


pytestmark = [
    pytest.mark.timeout(300),  # the first test builds the artifacts (session fixture)
    # The zipapp carries msgspec built for the building Python's minor version.
    pytest.mark.skipif(
        _system_python_minor() != str(sys.version_info[:2]),
        reason=f"{SYSTEM_PYTHON} is not Python {sys.version_info[0]}.{sys.version_info[1]}",
    ),
]


def _pyz(dist: Path) -> Path:
    [pyz] = dist.glob("squ-agentd-*.pyz")
    return pyz


def test_build_reports_the_size(dist: Path) -> None:
    """build-zipapp prints the file and its size in bytes, which matches the file."""
    pyz = _pyz(dist)
    match = re.search(rf"{re.escape(str(pyz))}\s+(\d+) bytes", (dist / "build.log").read_text())
    assert match, (dist / "build.log").read_text()
    assert int(match.group(1)) == pyz.stat().st_size
    assert pyz.stat().st_size < 20 * 1024 * 1024


def test_zipapp_holds_the_agent_and_not_the_console(dist: Path) -> None:
    """The agent's packages and compiled deps are inside; the console and textual are not."""
    names = zipfile.ZipFile(_pyz(dist)).namelist()
    tops = {n.split("/")[1] for n in names if n.startswith("site-packages/") and n.count("/") > 1}
    assert {"agentd", "shared", "msgspec", "psutil", "cryptography", "websockets"} <= tops
    assert "console" not in tops
    assert "textual" not in tops
    assert "pip" not in tops


def test_zipapp_runs_with_only_system_python(dist: Path, reaper: Path) -> None:
    """With no venv and no PYTHONPATH: init, serve, a job runs to success, SIGTERM stops it."""
    data = reaper / "data"
    env = clean_env(SHIV_ROOT=str(reaper / "shiv"))
    agent = [SYSTEM_PYTHON, str(_pyz(dist))]
    assert subprocess.run([SYSTEM_PYTHON, "-c", "import msgspec"], env=env).returncode != 0

    init = subprocess.run(
        [*agent, "init", "--data-dir", str(data)], env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    assert "certificate fingerprint: SHA256:" in init.stdout
    set_config(data / "agentd.toml", "server", "port", "0")
    (data / "jobs.d" / "hello.toml").write_text('[job.hello]\ncommand = "echo hello"\n')

    proc = start_serve(agent, data, env)
    try:
        wait_for(lambda: _answers(data) or proc.poll() is not None, timeout_s=60, what="agent up")
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


def _answers(data: Path) -> bool:
    try:
        control.request(control.socket_path(data), "status", None)
    except control.DaemonNotRunning:
        return False
    return True
