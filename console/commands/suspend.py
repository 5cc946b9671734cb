"""``squ suspend JOB`` / ``squ resume JOB``: stop or restart a job's schedule firing.

The job stays defined and can still be run by hand; only its schedule stops
(``jobs.disable`` / ``jobs.enable`` on each agent). ``--on`` chooses the agents,
else every agent that has the job. This is the command the TUI's ``s`` shows in
its confirmation, so the two stay the same action.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from console.commands._common import add_on, remote_message, say_error, with_fleet
from shared.errors import SquError

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

__all__ = ["add_parser", "set_enabled"]


class NoSuchJob(SquError):
    code = "unknown_job"

    def __init__(self, job: str, agents: list[str]) -> None:
        super().__init__(
            f"no job named {job!r} on {', '.join(agents)}", job=job, agents=", ".join(agents)
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("suspend", help="stop a job's schedule firing (it can still be run)")
    p.add_argument("job", metavar="JOB")
    add_on(p, "only on these agents (default: every agent that has the job)")
    p.set_defaults(func=lambda args: set_enabled(args, enabled=False))


def set_enabled(args: argparse.Namespace, *, enabled: bool) -> int:
    """Suspend (``enabled=False``) or resume ``args.job`` on the chosen agents.

    One line per agent; an agent that refuses is named with its reason (exit 1).
    Without ``--on``, agents that do not have the job are passed over; none having
    it is an error naming where we looked.
    """
    from console.fleet.link import AgentError
    from shared.protocol.messages import JobName

    explicit = bool(args.on)
    verb = "resumed" if enabled else "suspended"
    method = "jobs.enable" if enabled else "jobs.disable"

    async def body(fleet: Fleet, up: list[str]) -> int:
        done, failed = 0, 0
        for agent in up:
            try:
                record = await fleet.call(agent, method, JobName(name=args.job))
            except AgentError as exc:
                if exc.remote_code == "unknown_job" and not explicit:
                    continue
                say_error(args.command, remote_message(exc))
                failed += 1
                continue
            except SquError as exc:
                say_error(args.command, f"{agent}: {exc.message}")
                failed += 1
                continue
            print(f"{agent}: {args.job} {verb} (version {record.version})")
            done += 1
        if not done and not failed:
            raise NoSuchJob(args.job, up)
        return 1 if failed else 0

    return with_fleet(args, body)
