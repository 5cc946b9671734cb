"""``squ-agentd import-crontab FILE|- [--system] [--user NAME] [-o OUT]``.

Reads a crontab (user format, or system format with a user column with
``--system``) and writes the equivalent ``jobs.d`` TOML to stdout or to
``OUT``. A user crontab's jobs run as ``--user``, or as the owner when the
file is in cron's spool (``/var/spool/cron/crontabs/<user>``); otherwise a
warning says they would run as the agent's user. Every line that could not
be converted is listed on stderr with its line number and why; the exit code
is 0 when every line converted, 1 when some did not (the jobs that did
convert are still written).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agentd.commands._common import BadArgument
from shared.crontab import import_crontab
from shared.textsafe import inert


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "import-crontab",
        help="turn a crontab into a jobs.d file",
        description="Convert a crontab into jobs.d TOML; unconvertible lines go to stderr.",
    )
    parser.add_argument("file", metavar="FILE", help="crontab file, or - for stdin")
    parser.add_argument(
        "--system",
        action="store_true",
        help="system format: a user column after the time fields (/etc/crontab, /etc/cron.d)",
    )
    parser.add_argument("--user", help="run every job as this user (user-format crontabs)")
    parser.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    # Accepted for symmetry with every other command; the conversion needs no data dir.
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.system and args.user:
        raise BadArgument("--user", "a system crontab names the user on each line")
    source = "stdin" if args.file == "-" else args.file
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise BadArgument("FILE", f"cannot read {args.file}: {exc.strerror}") from None
    # Crontabs are bytes; a stray Latin-1 byte must not stop the import (it shows as U+FFFD).
    text = data.decode("utf-8", errors="replace")
    user = args.user
    if not args.system and user is None:
        user = spool_owner(Path(args.file)) if args.file != "-" else None
        if user is not None:
            print(f"{source}: a user crontab of {user!r}: its jobs run as {user}", file=sys.stderr)
        else:
            # A user crontab ran as its owner; without --user the agent's user (often
            # root) would run it. Say so loudly rather than guess.
            print(
                f"{source}: warning: no --user given: these jobs will run as the agent's "
                "user (root on a server); pass --user NAME if this is a user's crontab",
                file=sys.stderr,
            )
    result = import_crontab(text, system=args.system, user=user)
    toml = result.to_toml(source=source)
    if args.output:
        _write(Path(args.output), toml, force=args.force)
    else:
        sys.stdout.write(toml)
    for problem in result.problems:
        print(f"{source}:{problem.lineno}: not converted: {problem.why}", file=sys.stderr)
        print(f"    {inert(problem.line)}", file=sys.stderr)
    converted = f"{len(result.jobs)} job(s) converted"
    failed = f", {len(result.problems)} line(s) not converted" if result.problems else ""
    print(
        f"{converted}{failed}" + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr
    )
    return 1 if result.problems else 0


SPOOL_DIRS = (Path("/var/spool/cron/crontabs"), Path("/var/spool/cron"))


def spool_owner(path: Path, spool_dirs: tuple[Path, ...] = SPOOL_DIRS) -> str | None:
    """The user a crontab in cron's spool belongs to (the file's name there), else None."""
    resolved = path.absolute()
    if resolved.parent in spool_dirs and resolved.name and not resolved.name.startswith("."):
        return resolved.name
    return None


def _write(path: Path, text: str, *, force: bool) -> None:
    """Write atomically (a jobs.d reload never sees half a file), mode 0644."""
    if path.exists() and not force:
        raise BadArgument("-o", f"{path} exists; pass --force to overwrite it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadArgument("-o", f"cannot write {path}: {exc.strerror}") from None
