"""``squ demo``: a local agent with sample jobs, and the TUI on it. Nothing is left behind.

1. A scratch directory (``--dir`` to choose and keep it) holds an agent data dir
   and a console config dir.
2. A fresh operator key (OpenSSH Ed25519) goes into the console dir, its public
   line into the agent's ``authorized_operators`` as admin.
3. The agent listens on a free loopback port (plain ws://: loopback only) with
   the sample jobs of ``packaging/demo-jobs`` (one succeeding every few
   seconds, one failing with retries, one long-running with live output, one
   with parameters, one needing approval).
4. ``squ-agentd serve`` starts; the demo waits until it accepts connections.
5. The TUI opens on it. On quit (or Ctrl-C, SIGTERM, or SIGHUP when the terminal
   goes away) the agent is stopped,
   then its supervisor and any demo job still running (the supervisor outlives
   the agent on purpose in production; a demo must not), then the scratch
   directory is removed.

``--no-tui`` runs the agent and prints where it is until interrupted (scripts,
tests, and a second terminal with ``squ --config-dir DIR/console ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shared.errors import SquError

DEMO_JOBS = Path(__file__).resolve().parents[2] / "packaging" / "demo-jobs"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class DemoFailed(SquError):
    code = "demo_failed"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="try squ: a local agent with sample jobs, and the TUI on it")
    p.add_argument("--dir", help="scratch directory to use and keep (default: a temporary one)")
    p.add_argument("--no-tui", action="store_true", help="run the agent only, until Ctrl-C")
    p.set_defaults(func=run)


def free_port() -> int:
    """A loopback port free right now (the agent binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_jobs_dir() -> Path:
    if not DEMO_JOBS.is_dir():
        raise DemoFailed(f"the sample jobs are missing ({DEMO_JOBS}); is squ installed whole?")
    return DEMO_JOBS


def prepare(root: Path, port: int) -> tuple[Path, Path]:
    """Lay out the agent data dir and the console config dir under ``root``."""
    from console.commands.keygen import write_keypair
    from console.config import AgentEntry, Inventory, save_inventory

    agent_dir, console_dir = root / "agent", root / "console"
    jobs_dir = agent_dir / "jobs.d"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(agent_dir, 0o700)
    os.chmod(jobs_dir, 0o755)
    console_dir.mkdir(mode=0o700, exist_ok=True)
    for source in sorted(demo_jobs_dir().glob("*.toml")):
        target = jobs_dir / source.name
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
    (agent_dir / "agentd.toml").write_text(
        '[agent]\nname = "demo"\n\n[server]\nlisten = "127.0.0.1"\n'
        f"port = {port}\n\n[history]\nretention_days = 1\n"
    )
    key = console_dir / "id_ed25519"
    line = key.with_suffix(".pub").read_text().strip() if key.exists() else ""
    if not line:
        line = write_keypair(key, comment="demo@squ")
    operators = agent_dir / "authorized_operators"
    operators.write_text(f"# written by squ demo\nadmin demo {line}\n")
    os.chmod(operators, 0o600)
    url = f"ws://127.0.0.1:{port}"
    save_inventory(
        Inventory(
            path=console_dir / "fleet.toml",
            agents=(AgentEntry(name="demo", url=url),),
        )
    )
    return agent_dir, console_dir


def start_agent(agent_dir: Path) -> subprocess.Popen[bytes]:
    log = open(agent_dir / "agentd.log", "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "agentd", "serve", "--data-dir", str(agent_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # Its own session: a Ctrl-C in the TUI reaches us, and we stop it in order.
            start_new_session=True,
        )
    finally:
        log.close()


def wait_listening(proc: subprocess.Popen[bytes], port: int, agent_dir: Path) -> None:
    """Poll until the agent accepts connections; fail with its log if it exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise DemoFailed(
                f"the demo agent exited with {proc.returncode}:\n{log_tail(agent_dir)}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"the demo agent did not listen within {READY_TIMEOUT_S:g} s:\n"
                f"{log_tail(agent_dir)}"
            )
        time.sleep(0.1)


def log_tail(agent_dir: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        text = (agent_dir / "agentd.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    return "(no log)"


def leftovers(agent_dir: Path) -> list[int]:
    """Pids of processes that belong to ``agent_dir``: the supervisor and its jobs."""
    import psutil

    mine = str(agent_dir)
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if mine in cmdline:
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    found[child.pid] = child
    return sorted(found)


def stop_everything(proc: subprocess.Popen[bytes], agent_dir: Path) -> None:
    """Stop the agent (SIGTERM, then SIGKILL), then its supervisor and every job left."""
    import psutil

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Jobs first (SIGTERM, a short grace, SIGKILL), then the supervisor that owns them.
    procs = []
    for pid in leftovers(agent_dir):
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=3)


@contextlib.contextmanager
def scratch(explicit: str | None) -> Iterator[Path]:
    if explicit:
        root = Path(explicit).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="squ-demo-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    from console.commands.tui import open_tui

    with scratch(args.dir) as root:
        port = free_port()
        agent_dir, console_dir = prepare(root, port)
        proc = start_agent(agent_dir)
        # SIGTERM (a test, a shutdown) and SIGHUP (the terminal went away: a closed
        # window, a dropped SSH session, tmux kill-server) stop the demo as cleanly as
        # quitting does. SIGHUP's default action would end us at once, leaving the agent
        # (its own session, so it never sees the hang-up) and its supervisor running.
        previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
        try:
            wait_listening(proc, port, agent_dir)
            if args.no_tui:
                print(f"demo agent listening on ws://127.0.0.1:{port} (data in {agent_dir})")
                print(f"try: squ --config-dir {console_dir} jobs    (Ctrl-C stops the demo)")
                sys.stdout.flush()
                while proc.poll() is None:
                    time.sleep(0.5)
                raise DemoFailed(f"the demo agent exited:\n{log_tail(agent_dir)}")
            code = open_tui(console_dir, console_dir / "mirror.db")
            # Stopping takes a few seconds (the agent drains): say so on the blank screen.
            print("stopping the demo agent, its supervisor and jobs...", file=sys.stderr)
            return code
        except KeyboardInterrupt:
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            stop_everything(proc, agent_dir)
            if not args.no_tui:
                # After a hang-up there is no terminal left to say it on.
                with contextlib.suppress(OSError):
                    print("demo stopped: agent, supervisor and jobs ended", file=sys.stderr)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
