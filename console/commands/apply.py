"""``squ apply FILE.toml``: jobs as code. Creates or updates each job on its agents.

The file has the ``jobs.d`` layout (``[defaults]`` and ``[job.NAME]`` tables).
Each job goes to ``--on`` agents if given, else to its ``targets`` (server
names, or ``key=value`` labels from fleet.toml), else to every agent. For each
(agent, job) the current definition is fetched and a diff printed first; an
unchanged job is left alone (applying twice changes nothing), a changed one is
written with the version it was diffed against, so an edit made meanwhile by
someone else is refused (``conflict``) rather than overwritten. ``--dry-run``
stops after the diff. A job declared in an agent's ``jobs.d`` is refused by
the agent, naming the file to edit.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands._common import (
    add_on,
    context,
    print_json,
    remote_message,
    say_error,
    with_fleet,
)
from console.config import Inventory
from shared.errors import SquError
from shared.jobs import definition_hash, job_to_toml, parse_jobs_toml
from shared.models import Job, JobRecord

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


class NoTargets(SquError):
    code = "no_targets"

    def __init__(self, job: str, targets: tuple[str, ...]) -> None:
        super().__init__(
            f"job {job!r}: targets {list(targets)} match no agent in fleet.toml",
            job=job,
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="create or update jobs from a TOML file (shows a diff)")
    p.add_argument("file", help="a jobs file: [job.NAME] tables, as in jobs.d")
    add_on(p, "apply to these agents instead of each job's targets")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--json", action="store_true", help="the outcome per (agent, job) as JSON")
    p.set_defaults(func=run)


def read_jobs(path: Path) -> list[Job]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SquError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SquError(f"{path}: not UTF-8 text") from None
    return parse_jobs_toml(text, where=str(path))


def targets_of(job: Job, inventory: Inventory, on: list[str]) -> list[str]:
    """The agents ``job`` goes to: ``--on``, else its targets (names or labels), else all."""
    if on:
        return list(on)
    if not job.targets:
        return [a.name for a in inventory.agents]
    chosen = []
    for agent in inventory.agents:
        for target in job.targets:
            key, sep, value = target.partition("=")
            if (sep and agent.labels.get(key) == value) or target == agent.name:
                chosen.append(agent.name)
                break
    if not chosen:
        raise NoTargets(job.name, job.targets)
    return chosen


def diff_text(agent: str, current: JobRecord | None, job: Job, source: str) -> str:
    before = job_to_toml(current.job).splitlines(keepends=True) if current else []
    after = job_to_toml(job).splitlines(keepends=True)
    label = f"{agent}: {job.name} (version {current.version})" if current else f"{agent}: (none)"
    return "".join(difflib.unified_diff(before, after, fromfile=label, tofile=source))


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    jobs = read_jobs(path)
    ctx = context(args)
    plan = [(job, targets_of(job, ctx.inventory, args.on)) for job in jobs]
    agents = sorted({a for _, targets in plan for a in targets})
    # Without --json the diff goes to stdout (it is what the operator reads first);
    # with --json it goes to stderr so stdout stays one JSON document.
    out = sys.stderr if args.json else sys.stdout

    async def body(fleet: Fleet, up: list[str]) -> int:
        outcome: list[dict[str, object]] = []
        failed = 0
        for job, targets in plan:
            for agent in targets:
                if agent not in up:
                    outcome.append({"agent": agent, "job": job.name, "result": "unreachable"})
                    failed += 1
                    continue
                try:
                    result = await apply_one(fleet, agent, job, str(path), args.dry_run, out)
                except SquError as exc:
                    say_error("apply", f"{job.name} on {remote_message(exc)}")
                    outcome.append(
                        {"agent": agent, "job": job.name, "result": "refused", "error": exc.message}
                    )
                    failed += 1
                    continue
                outcome.append({"agent": agent, "job": job.name, **result})
        if args.json:
            print_json(outcome)
        else:
            for row in outcome:
                version = f" (version {row['version']})" if row.get("version") else ""
                print(f"{row['agent']}: {row['job']} {row['result']}{version}")
        return 1 if failed else 0

    return with_fleet(args, body, only=agents)


async def apply_one(
    fleet: Fleet, agent: str, job: Job, source: str, dry_run: bool, out: object
) -> dict[str, object]:
    """Diff ``job`` against ``agent``'s copy and write it unless unchanged or a dry run."""
    from console.fleet.link import AgentError
    from shared.protocol.messages import JobName, PutJob

    try:
        current: JobRecord | None = await fleet.call(agent, "jobs.get", JobName(name=job.name))
    except AgentError as exc:
        if exc.remote_code != "unknown_job":
            raise
        current = None
    if current is not None and current.definition_hash == definition_hash(job):
        return {"result": "unchanged", "version": current.version}
    print(diff_text(agent, current, job, source), end="", file=out)  # type: ignore[call-overload]
    verb = "created" if current is None else "updated"
    if dry_run:
        return {"result": f"would be {verb}", "version": current.version if current else 0}
    expected = current.version if current is not None else 0
    record: JobRecord = await fleet.call(
        agent, "jobs.put", PutJob(job=job, expected_version=expected)
    )
    return {"result": verb, "version": record.version}
