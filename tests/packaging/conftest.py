"""Build the single-file agent and the .deb once per test session, into a temp dir.

Both are built from the last commit (``--from-git HEAD``) when the checkout is a
git repository, so work in progress elsewhere in a shared checkout cannot break
or leak into the package; on a clean CI clone that is the working tree anyway.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.pkgkit import ROOT, kill_leftovers

BUILD_TIMEOUT_S = 300


def _git_rev() -> list[str]:
    probe = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD"], capture_output=True
    )
    return ["--from-git", "HEAD"] if probe.returncode == 0 else []


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding squ-agentd-<v>.pyz and squ-agentd_<v>_all.deb, built for this run."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build-deb"), "--out", str(out), *_git_rev()],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (out / "build.log").write_text(build.stdout)
    return out


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``; every process left that mentions it is killed afterwards."""
    yield tmp_path
    kill_leftovers(str(tmp_path))
