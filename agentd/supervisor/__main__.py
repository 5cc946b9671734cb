"""``python -m agentd.supervisor --data-dir D``: run the supervisor for one agent data dir.

Only one supervisor runs per data dir: it holds an exclusive lock on
``D/supervisor/lock`` for its whole life; a second one exits at once with status
0 (the first one serves). ``--detach`` forks into a new session first, so the
process that started it (the agent) can exit or die without touching it.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import sys
from pathlib import Path

from agentd.supervisor.server import Supervisor, supervisor_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentd.supervisor")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--detach", action="store_true", help="fork into a new session first")
    parser.add_argument(
        "--containment",
        choices=("auto", "cgroup", "sweep"),
        default="auto",
        help="auto: a cgroup v2 subtree when we may create one, else the sweep",
    )
    parser.add_argument(
        "--idle-exit-s",
        type=float,
        default=600.0,
        help="exit after this long with no job, no unacked exit and no client (0: never)",
    )
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    # Everything we create (socket, journal, logs) is ours alone: the socket
    # starts jobs as root, so no other user may even reach it.
    os.umask(0o077)
    sdir = supervisor_dir(data_dir)
    sdir.mkdir(parents=True, exist_ok=True)
    os.chmod(sdir, 0o700)
    if args.detach:
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
    lock_fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"a supervisor already serves {data_dir}", file=sys.stderr)
        return 0
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s supervisor[%(process)d] %(levelname)s %(message)s",
    )
    os.chdir("/")
    asyncio.run(
        Supervisor(data_dir, containment=args.containment, idle_exit_s=args.idle_exit_s).serve()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
