"""``squ-agentd check [--data-dir DIR] [FILE ...]``: validate settings and job files offline.

For configuration management: run it before ``squ-agentd reload`` (or on a
file about to be deployed) the way ``nginx -t`` or ``visudo -c`` are run. With
no FILE it checks ``DIR/agentd.toml`` and every file of the agent's jobs
directory with exactly the rules a reload applies (syntax, every field,
duplicate names, unsafe permissions); with FILEs it checks just those. It
never talks to the running agent and changes nothing. Exit code 0 when all is
valid, 1 when anything is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentd.commands._common import add_data_dir, data_dir_of, print_json
from agentd.config import ConfigError, load_config
from agentd.jobsdir import JobsDir
from shared.jobs import InvalidJobFile, parse_jobs_toml


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check", help="validate agentd.toml and job files without touching the agent"
    )
    add_data_dir(parser)
    parser.add_argument("files", nargs="*", metavar="FILE", help="job files to check instead")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    errors: list[str] = []
    jobs: dict[str, str] = {}  # job name -> file
    if args.files:
        _check_files([Path(f) for f in args.files], jobs, errors)
    else:
        data_dir = data_dir_of(args)
        try:
            jobs_dir = load_config(data_dir).jobs_dir
        except ConfigError as exc:
            errors.append(exc.message)
            jobs_dir = data_dir / "jobs.d"
        assert jobs_dir is not None  # AgentConfig always resolves it
        result = JobsDir(jobs_dir).load()
        errors.extend(e.message for e in result.errors)
        jobs.update({name: str(entry.file) for name, entry in result.jobs.items()})
    if args.json:
        print_json({"ok": not errors, "jobs": jobs, "errors": errors})
    else:
        for message in errors:
            print(message, file=sys.stderr)
        files = len(set(jobs.values()))
        verdict = "ok" if not errors else f"{len(errors)} problem(s)"
        print(f"{verdict}: {len(jobs)} job(s) in {files} file(s)")
    return 1 if errors else 0


def _check_files(paths: list[Path], jobs: dict[str, str], errors: list[str]) -> None:
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        try:
            parsed = parse_jobs_toml(text, where=str(path))
        except InvalidJobFile as exc:
            errors.extend(exc.problems)
            continue
        for job in parsed:
            if job.name in jobs:
                errors.append(f"{path}: job {job.name!r} is also defined in {jobs[job.name]}")
            else:
                jobs[job.name] = str(path)
