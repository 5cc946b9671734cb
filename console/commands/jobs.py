"""``squ jobs``: every job on the agents, one line per fleet job (``--json``: per agent)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.commands._common import add_on, print_json, remote_message, say_error, with_fleet
from shared.errors import SquError
from shared.models import Job, JobRecord

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("jobs", help="list the jobs of every agent")
    add_on(p)
    p.add_argument("--json", action="store_true", help="one object per (agent, job)")
    p.set_defaults(func=run)


def schedule_text(job: Job) -> str:
    if job.cron is not None:
        return job.cron
    if job.at is not None:
        return f"at {job.at}"
    return "manual"


def run(args: argparse.Namespace) -> int:
    from shared.protocol.messages import Empty

    async def body(fleet: Fleet, up: list[str]) -> int:
        found: list[tuple[str, JobRecord]] = []
        failed = 0
        for agent in up:
            try:
                result = await fleet.call(agent, "jobs.list", Empty())
            except SquError as exc:
                say_error("jobs", remote_message(exc))
                failed += 1
                continue
            found.extend((agent, record) for record in result.jobs)
        if args.json:
            print_json(
                [
                    {
                        "agent": agent,
                        "name": r.job.name,
                        "schedule": schedule_text(r.job),
                        "enabled": r.job.enabled,
                        "version": r.version,
                        "source": r.source,
                        "definition_hash": r.definition_hash,
                        "updated_at": r.updated_at,
                        "updated_by": r.updated_by,
                        "job": r.job,
                    }
                    for agent, r in found
                ]
            )
            return 1 if failed else 0
        by_name: dict[str, list[tuple[str, JobRecord]]] = {}
        for agent, record in found:
            by_name.setdefault(record.job.name, []).append((agent, record))
        rows = [("JOB", "SCHEDULE", "ENABLED", "AGENTS", "SOURCE")]
        for name in sorted(by_name):
            entries = by_name[name]
            first = entries[0][1]
            enabled = {r.job.enabled for _, r in entries}
            rows.append(
                (
                    name,
                    schedule_text(first.job),
                    "yes" if enabled == {True} else "no" if enabled == {False} else "some",
                    ",".join(sorted(a for a, _ in entries)),
                    ",".join(sorted({r.source for _, r in entries})),
                )
            )
        if len(rows) == 1:
            print("no jobs on " + ", ".join(up))
        else:
            print_table(rows)
        return 1 if failed else 0

    return with_fleet(args, body)


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
