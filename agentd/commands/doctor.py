"""``squ-agentd doctor [--data-dir DIR] [--json]``: check an agent's set-up, say what to fix.

Each check is a plain function ``check_<name>(ctx) -> Check`` with a level
(``ok``, ``warn`` or ``fail``), a message saying what was found and, unless
ok, the command or edit that fixes it, so tests and other tools can call them
one by one. :func:`gather` reads what they share once (config, and the running
agent's status through its control socket if it answers). Exit code: 1 if any
check fails, else 0 (warnings do not fail: they are worth a look, not a page).

Doctor only reads: it never creates a file, a cgroup or a socket the agent
would use, so it is safe beside a running agent, as root, at any time.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import os
import shutil
import socket
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from agentd.commands._common import add_data_dir, data_dir_of, print_json

__all__ = [
    "CHECKS",
    "Check",
    "Context",
    "Level",
    "gather",
    "run_checks",
]

CERT_WARN_DAYS = 30
CLOCK_MAX_ERROR_S = 1.0


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: its level, what was found, and (unless ok) how to fix it."""

    level: Level
    message: str
    fix: str = ""


@dataclass(slots=True, kw_only=True)
class Context:
    """What the checks share; built by :func:`gather`."""

    data_dir: Path
    config: Any = None  # AgentConfig, or None when it could not be loaded
    config_error: str = ""
    status: dict[str, Any] | None = None  # the running agent's status, None if it is not running
    not_running_why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def gather(data_dir: Path) -> Context:
    """Load the config and ask the agent (if running) for its status; never raises."""
    from agentd import control
    from agentd.config import ConfigError, load_config
    from shared.errors import SquError

    ctx = Context(data_dir=Path(data_dir))
    try:
        ctx.config = load_config(ctx.data_dir)
    except ConfigError as exc:
        ctx.config_error = exc.message
    try:
        ctx.status = control.request(
            control.socket_path(ctx.data_dir), "status", None, timeout_s=5.0
        )
    except control.DaemonNotRunning as exc:
        ctx.not_running_why = exc.message
    except SquError as exc:
        ctx.not_running_why = f"the control socket did not answer: {exc.message}"
    return ctx


# -- the checks ------------------------------------------------------------------------


def check_agent(ctx: Context) -> Check:
    """Is the agent running, and is it accepting new work?"""
    if ctx.status is None:
        return Check(
            Level.WARN,
            f"the agent is not running ({ctx.not_running_why})",
            "systemctl start squ-agentd  (or: squ-agentd serve --data-dir "
            f"{ctx.data_dir}); then journalctl -u squ-agentd if it stops",
        )
    s = ctx.status
    if s.get("refusing_new_work"):
        return Check(
            Level.FAIL,
            f"the agent starts no new work: {s['refusing_new_work']}",
            f"free disk space on the file system of {ctx.data_dir}",
        )
    if s.get("job_errors"):
        return Check(
            Level.WARN,
            f"the agent runs, but {len(s['job_errors'])} job file(s) have errors "
            "(their jobs keep their last good definition)",
            f"squ-agentd check --data-dir {ctx.data_dir}",
        )
    return Check(
        Level.OK,
        f"agent {s.get('agent')} running: pid {s.get('pid')}, up {s.get('uptime_s', 0):.0f} s, "
        f"{s.get('jobs')} job(s), {s.get('active_executions')} running",
    )


def check_config(ctx: Context) -> Check:
    """Does agentd.toml load, and do the job files parse?"""
    from agentd.config import CONFIG_FILE
    from agentd.jobsdir import JobsDir

    if not ctx.data_dir.is_dir():
        return Check(
            Level.FAIL,
            f"no data directory at {ctx.data_dir}",
            f"squ-agentd init --data-dir {ctx.data_dir}",
        )
    if ctx.config is None:
        return Check(
            Level.FAIL, ctx.config_error, "edit the file at that line, then: squ-agentd check"
        )
    path = ctx.data_dir / CONFIG_FILE
    where = str(path) if path.exists() else f"{path} (absent: all defaults)"
    result = JobsDir(ctx.config.jobs_dir).load()
    if result.errors:
        first = result.errors[0].message
        return Check(
            Level.WARN,
            f"{where} is valid, but {len(result.errors)} job file problem(s), first: {first}",
            f"fix the file named, then: squ-agentd check --data-dir {ctx.data_dir}",
        )
    return Check(Level.OK, f"{where} is valid; {len(result.jobs)} job(s) in {ctx.config.jobs_dir}")


def check_permissions(ctx: Context) -> Check:
    """Private files private, and nothing the agent trusts writable by others."""
    from agentd.config import STORE_FILE
    from agentd.server.boot import OPERATORS_FILE, TLS_KEY

    if not ctx.data_dir.is_dir():
        return Check(Level.FAIL, f"no data directory at {ctx.data_dir}", "squ-agentd init")
    euid = os.geteuid()
    problems: list[str] = []
    fixes: list[str] = []

    def look(path: Path, forbidden: int, mode_fix: str, what: str) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
            return
        if st.st_uid not in (euid, 0):
            problems.append(f"{path} belongs to uid {st.st_uid}, not the agent's user")
            fixes.append(f"chown {euid} {path}")
        mode = stat.S_IMODE(st.st_mode)
        if mode & forbidden:
            problems.append(f"{path} is mode {mode:04o}: {what}")
            fixes.append(f"chmod {mode_fix} {path}")

    look(ctx.data_dir, 0o077, "700", "others can read the agent's data")
    look(ctx.data_dir / TLS_KEY, 0o077, "600", "others can read the TLS private key")
    look(ctx.data_dir / STORE_FILE, 0o077, "600", "others can read the job history")
    look(ctx.data_dir / OPERATORS_FILE, 0o022, "644", "others can grant themselves access")
    if ctx.config is not None:
        look(ctx.config.jobs_dir, 0o022, "755", "others can add jobs that run as root")
    if problems:
        return Check(Level.FAIL, "; ".join(problems), "; ".join(fixes))
    return Check(Level.OK, f"{ctx.data_dir} and the files the agent trusts are private")


def check_disk(ctx: Context) -> Check:
    """Enough free space that the agent keeps starting work (and a margin)."""
    min_mb = ctx.config.min_free_disk_mb if ctx.config is not None else 100
    where = ctx.data_dir if ctx.data_dir.exists() else ctx.data_dir.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError as exc:
        return Check(Level.FAIL, f"cannot measure free space at {where}: {exc.strerror}")
    free_mb = usage.free // (1024 * 1024)
    pct = 100 * usage.free / usage.total if usage.total else 0.0
    text = f"{free_mb} MB free ({pct:.0f}%) at {where}; below {min_mb} MB no new work starts"
    fix = (
        "remove old files or grow the file system; "
        "lower [logs] max_total_mb or [history] retention_days"
    )
    if free_mb < min_mb:
        return Check(Level.FAIL, text, fix)
    if free_mb < 2 * min_mb or pct < 5:
        return Check(Level.WARN, text, fix)
    return Check(Level.OK, text)


class _Timex(ctypes.Structure):
    # glibc's struct timex on 64-bit Linux: the fields we read, then room for the rest.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


TIME_ERROR = 5
STA_UNSYNC = 0x0040


def clock_state() -> tuple[bool, float] | None:
    """(synchronised, max error in s) from the kernel (adjtimex, read-only); None if unknown."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        tx = _Timex()  # modes = 0: read, change nothing
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    synced = state != TIME_ERROR and not (tx.status & STA_UNSYNC)
    return synced, tx.maxerror / 1e6


def check_clock(ctx: Context) -> Check:
    """Is the system clock synchronised (NTP)? Cron times and history depend on it."""
    state = ctx.extra.get("clock_state", clock_state())
    if state is None:
        return Check(
            Level.WARN, "cannot tell whether the clock is synchronised", "timedatectl status"
        )
    synced, max_error_s = state
    fix = "enable time sync: timedatectl set-ntp true  (or install chrony / systemd-timesyncd)"
    if not synced:
        return Check(Level.WARN, "the system clock is not synchronised (NTP)", fix)
    if max_error_s > CLOCK_MAX_ERROR_S:
        return Check(Level.WARN, f"clock synchronised, but max error {max_error_s:.1f} s", fix)
    return Check(Level.OK, f"clock synchronised (max error {max_error_s * 1000:.0f} ms)")


def _own_cgroup() -> Path | None:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        own = next(
            line[3:].strip()
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
    except (OSError, StopIteration):
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1]) / own.lstrip("/")
    return None


def _kernel() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


def check_cgroups(ctx: Context) -> Check:
    """Per-execution cgroups need a delegated cgroup v2 subtree (the unit's Delegate=yes)."""
    fix = (
        "run the agent under the packaged unit (Delegate=yes), or give it a writable "
        "cgroup v2 subtree; until then escaped grandchildren are found by a /proc sweep"
    )
    if ctx.status is not None:
        mode = str(ctx.status.get("containment", ""))
        if mode.startswith("cgroup"):
            return Check(Level.OK, f"the running agent contains jobs with {mode}")
        return Check(Level.WARN, f"the running agent contains jobs with {mode or '?'}", fix)
    own = _own_cgroup()
    if own is None:
        return Check(Level.WARN, "no cgroup v2 hierarchy mounted", fix)
    # The root cgroup has no cgroup.kill of its own; children have it from kernel 5.14.
    if not (own / "cgroup.kill").exists() and _kernel() < (5, 14):
        return Check(Level.WARN, "cgroup v2 without cgroup.kill (kernel < 5.14)", fix)
    if os.access(own, os.W_OK) and os.access(own / "cgroup.procs", os.W_OK):
        return Check(Level.OK, f"cgroup v2 at {own} is writable (agent not running to confirm)")
    return Check(Level.WARN, f"cgroup v2 at {own} is not delegated to this user", fix)


def check_certificate(ctx: Context) -> Check:
    """The agent's TLS certificate: present, matching its key, not expiring soon."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from agentd.server.boot import TLS_CERT, TLS_KEY
    from agentd.server.tls import certificate_fingerprint

    cert_path, key_path = ctx.data_dir / TLS_CERT, ctx.data_dir / TLS_KEY
    init = f"squ-agentd init --data-dir {ctx.data_dir}"
    try:
        pem = cert_path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except FileNotFoundError:
        return Check(Level.FAIL, f"no certificate at {cert_path}", init)
    except (OSError, ValueError) as exc:
        return Check(Level.FAIL, f"{cert_path} is unreadable: {exc}", "restore it from backup")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return Check(Level.FAIL, f"no private key at {key_path}", "restore it from backup")
    except (OSError, ValueError, TypeError) as exc:
        return Check(Level.FAIL, f"{key_path} is unreadable: {exc}", "restore it from backup")
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
        return Check(
            Level.FAIL,
            f"{key_path} does not match {cert_path}",
            "restore the pair from one backup (see docs/operations.md: rotate the certificate)",
        )
    fingerprint = certificate_fingerprint(pem)
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    until = cert.not_valid_after_utc.date().isoformat()
    rotate = "rotate it: see docs/operations.md (consoles must re-pin the new fingerprint)"
    if left.total_seconds() <= 0:
        return Check(Level.FAIL, f"certificate {fingerprint} expired on {until}", rotate)
    if left.days < CERT_WARN_DAYS:
        return Check(Level.WARN, f"certificate {fingerprint} expires on {until}", rotate)
    return Check(Level.OK, f"certificate {fingerprint}, valid until {until}")


def check_operators(ctx: Context) -> Check:
    """authorized_operators parses (a broken file refuses every login) and names someone."""
    from agentd.server.boot import OPERATORS_FILE
    from shared.identity import InvalidOperators, parse_authorized_operators

    path = ctx.data_dir / OPERATORS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Check(Level.WARN, f"no {path}: nobody can log in", f"squ-agentd init; edit {path}")
    except (OSError, UnicodeDecodeError) as exc:
        return Check(Level.FAIL, f"cannot read {path}: {exc}", f"fix {path}")
    try:
        operators = parse_authorized_operators(text, str(path))
    except InvalidOperators as exc:
        return Check(
            Level.FAIL, f"{exc.message} (every login is refused until fixed)", "fix that line"
        )
    if not operators:
        return Check(
            Level.WARN,
            f"{path} names nobody: no console can log in",
            f"add a line 'ROLE NAME ssh-ed25519 AAAA...' to {path}",
        )
    roles = ", ".join(sorted({str(o.role) for o in operators}))
    return Check(Level.OK, f"{len(operators)} operator(s) may log in ({roles})")


def check_port(ctx: Context) -> Check:
    """Can consoles reach the agent's WebSocket port?"""
    if ctx.config is None:
        return Check(Level.WARN, "unknown: the config did not load", "fix the config first")
    host, port = ctx.config.listen_host, ctx.config.listen_port
    see = f"ss -ltnp 'sport = :{port}'  (who holds it); journalctl -u squ-agentd"
    if ctx.status is not None:
        url = str(ctx.status.get("listen", ""))
        if url:
            return Check(Level.OK, f"the agent listens on {url}")
        return Check(Level.FAIL, f"the agent runs but does not listen on {host}:{port}", see)
    if port == 0:
        return Check(Level.OK, f"port 0: the agent will pick a free port on {host}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Check(Level.FAIL, f"{host}:{port} is held by another program", see)
            return Check(Level.FAIL, f"cannot listen on {host}:{port}: {exc.strerror}", see)
    return Check(Level.OK, f"{host}:{port} is free for the agent (not running now)")


CHECKS: dict[str, Callable[[Context], Check]] = {
    "agent": check_agent,
    "config": check_config,
    "permissions": check_permissions,
    "disk": check_disk,
    "clock": check_clock,
    "cgroups": check_cgroups,
    "certificate": check_certificate,
    "operators": check_operators,
    "port": check_port,
}


def run_checks(ctx: Context) -> dict[str, Check]:
    """Every check in order; a check that raises is reported as a failure, not a traceback."""
    out: dict[str, Check] = {}
    for name, fn in CHECKS.items():
        try:
            out[name] = fn(ctx)
        except Exception as exc:  # one broken probe must not hide the others' findings
            out[name] = Check(Level.FAIL, f"the check itself failed: {exc!r}", "report this bug")
    return out


# -- command line ----------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check config, permissions, disk, clock, cgroups, certificate and port",
    )
    add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = gather(data_dir_of(args))
    results = run_checks(ctx)
    failed = any(c.level is Level.FAIL for c in results.values())
    if args.json:
        print_json(
            {
                "data_dir": str(ctx.data_dir),
                "ok": not failed,
                "checks": [{"name": n, **asdict(c)} for n, c in results.items()],
            }
        )
    else:
        width = max(len(n) for n in results)
        for name, found in results.items():
            print(f"{found.level.value:<4}  {name:<{width}}  {found.message}")
            if found.fix:
                print(f"{'':<4}  {'':<{width}}  fix: {found.fix}")
        counts = {lvl: sum(c.level is lvl for c in results.values()) for lvl in Level}
        print(
            f"\n{counts[Level.FAIL]} failed, {counts[Level.WARN]} warning(s), {counts[Level.OK]} ok"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m agentd.commands.doctor``: the same command, standalone."""
    parser = argparse.ArgumentParser(prog="squ-agentd")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *(argv or [])])
    return int(args.func(args))


if __name__ == "__main__":
    import sys

    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))
