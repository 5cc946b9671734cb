"""Unix socket paths that fit the kernel's limit, wherever the data directory is.

``sun_path`` holds 108 bytes, and a data directory under a long prefix (a
scratch root in a package test, a deep pytest tmp dir, a container mount) makes
``DATA/agentd.sock`` longer than that. Linux resolves ``/proc/self/fd/N/name``
through an open directory descriptor, so the same socket can always be named
in a few dozen bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SUN_PATH_MAX", "reachable"]

SUN_PATH_MAX = 100  # a margin under the kernel's 108, NUL included


@contextmanager
def reachable(path: Path | str) -> Iterator[str]:
    """A name for ``path`` short enough to bind or connect: itself, or via /proc/self/fd.

    Use the name inside the ``with`` block only: the directory descriptor behind
    it is closed on exit (a bound or connected socket keeps working after that).
    """
    path = Path(path)
    text = str(path)
    if len(os.fsencode(text)) < SUN_PATH_MAX:
        yield text
        return
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dirfd}/{path.name}"
    finally:
        os.close(dirfd)
