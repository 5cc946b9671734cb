"""Output floor: ``head -c N /dev/zero > file``, the shell redirect."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

__all__ = ["redirect_rate"]


def redirect_rate(work: Path, nbytes: int) -> float:
    """Bytes per second written by ``head -c N /dev/zero > file`` (file removed after)."""
    target = work / "redirect.out"
    started = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", f"head -c {nbytes} /dev/zero > {target}"], check=True)
    elapsed = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    return size / elapsed
