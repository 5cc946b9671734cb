"""Helpers for packaging tests: a clean server environment, leftover processes, the agent CLI."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """What a fresh server offers: no venv, no PYTHONPATH, a plain PATH."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root", **extra}


def kill_leftovers(marker: str) -> None:
    """Kill every process whose command line or environment mentions ``marker`` (a temp path)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        if proc.pid == os.getpid():
            continue
        text = " ".join(proc.info.get("cmdline") or [])
        environ = proc.info.get("environ") or {}
        if marker in text or any(marker in v for v in environ.values()):
            found.append(proc)
    for proc in found:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(found, timeout=5)


def set_config(path: Path, section: str, key: str, value: str) -> None:
    """Put ``key = value`` (TOML text) under ``[section]`` as an operator editing the file would."""
    lines = path.read_text().splitlines()
    out, done, current = [], False, ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[]")
        if current == section and stripped.split("=")[0].strip() == key:
            continue  # the old value (uncommented) goes
        out.append(line)
        if not done and stripped == f"[{section}]":
            out.append(f"{key} = {value}")
            done = True
    assert done, f"no [{section}] in {path}"
    path.write_text("\n".join(out) + "\n")


def start_serve(argv: list[str], data_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``... serve`` in the background, stderr into DATA/serve.stderr."""
    with (data_dir.parent / "serve.stderr").open("ab") as log:
        return subprocess.Popen(
            [*argv, "serve", "--data-dir", str(data_dir), "--metrics-listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd="/",
        )
