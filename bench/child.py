"""The child command every fire-lag benchmark runs, for squ-cron and references.

The child records its own start time: ``/bin/bash -c 'echo $EPOCHREALTIME >>
FILE'``, run through ``/bin/sh -c`` as cron and squ-cron run a job's command.
``$EPOCHREALTIME`` is a bash builtin (no fork, microseconds), and one small
``O_APPEND`` write per child keeps lines whole when a thousand children write
at once. A ``python3 -S -c`` child would add 10+ ms of interpreter start; a C
stamp program would need a compiler on a fresh clone. Bash's own start (about
2 ms on these machines, ``fork``/``exec`` of dash and bash included) is in
every measurement, squ-cron and reference alike, so ratios compare scheduling
and spawning, and each note also gives the difference in milliseconds.
"""

from __future__ import annotations

import shlex
from pathlib import Path

__all__ = ["SHELL_ARGV", "read_stamps", "shell_argv", "stamp_command"]

# How cron (and squ-cron) turn a job's command string into a process.
SHELL_ARGV = ("/bin/sh", "-c")


def stamp_command(stamp_file: Path) -> str:
    """The job command: append the child's start time to ``stamp_file``."""
    inner = f"echo $EPOCHREALTIME >> {shlex.quote(str(stamp_file))}"
    return f"/bin/bash -c {shlex.quote(inner)}"


def shell_argv(command: str) -> list[str]:
    """The argv a reference spawns for ``command`` (the same shell as a job)."""
    return [*SHELL_ARGV, command]


def read_stamps(stamp_file: Path) -> list[float]:
    """Start times recorded by the children, in seconds since the epoch."""
    try:
        text = stamp_file.read_text()
    except FileNotFoundError:
        return []
    stamps = []
    for line in text.split():
        try:
            stamps.append(float(line))
        except ValueError:
            continue  # a torn line would be a bug in the child; never seen, skip it
    return stamps
