"""``squ run JOB``: trigger a job now, on ``--on`` agents or on every agent that has it.

``--param k=v`` overrides a parameter (typed and checked by the agent, passed
to the process as an environment variable). ``--wait`` waits for the run to
finish (retries included: the run is over when its newest execution is) and
exits with the job's code: 0 on success, the job's own exit code on failure,
124 on timeout, 130 if cancelled, 125 if lost, 3 if skipped. With one target,
``--wait`` also streams the job's output live (``--quiet`` to not).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from console.commands._common import (
    add_on,
    print_json,
    remote_message,
    say_error,
    with_fleet,
    write_output,
)
from shared.enums import ExecutionStatus as S
from shared.errors import SquError
from shared.models import Execution
from shared.status import wait_exit_code

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

POLL_S = 0.3


class NoSuchJob(SquError):
    code = "unknown_job"

    def __init__(self, job: str, agents: list[str]) -> None:
        super().__init__(f"no job named {job!r} on {', '.join(agents)}", job=job)


class BadParam(SquError):
    code = "invalid_parameter"

    def __init__(self, text: str) -> None:
        super().__init__(f"--param {text!r} must look like name=value")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a job now")
    p.add_argument("job")
    add_on(p, "run on these agents (default: every agent that has the job)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="parameter value")
    p.add_argument("--wait", action="store_true", help="wait; exit with the job's exit code")
    p.add_argument("--quiet", action="store_true", help="with --wait: do not stream the output")
    p.add_argument("--json", action="store_true", help="print the execution(s) as JSON")
    p.set_defaults(func=run)


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParam(pair)
        params[key] = value
    return params


exit_code_of = wait_exit_code  # one rule for agent and console (shared/status.py)


async def executions_of_run(fleet: Fleet, agent: str, run_id: str) -> list[Execution]:
    """The run's executions, first attempt first."""
    from shared.protocol.messages import ExecutionsQuery

    result = await fleet.call(agent, "executions.query", ExecutionsQuery(run_id=run_id, limit=50))
    rows: list[Execution] = sorted(result.executions, key=lambda e: (e.retry_index or 0, e.id))
    return rows


async def wait_run(fleet: Fleet, agent: str, exec_id: str, *, stream: bool) -> Execution:
    """Wait for the run started as ``exec_id`` to end (after its retries); stream its output.

    The run is over when its newest execution is final (a retry is recorded in the
    same transaction as the failure it follows). With ``stream``, each attempt's
    output is copied once, in order, even one that ended before we looked. A dropped
    link is waited out: the agent's jobs carry on while it restarts, and so does
    the wait.
    """
    link = fleet.link(agent)
    streamed: set[str] = set()
    told_approval = False
    while True:
        try:
            rows = await executions_of_run(fleet, agent, exec_id)
        except SquError:
            await link.wait_up(60.0)
            continue
        newest = rows[-1]
        if stream:
            todo = [e for e in rows if e.id not in streamed and e.status not in _NOT_STARTED]
            for ex in todo:
                streamed.add(ex.id)  # each execution's output is shown once
                if ex.retry_index:
                    print(f"[{agent}: retry {ex.retry_index} as {ex.id}]", file=sys.stderr)
                await stream_log(fleet, agent, ex.id)
            if todo:
                continue  # statuses have moved on: look again before sleeping
        if newest.status is S.AWAITING_APPROVAL and not told_approval:
            told_approval = True
            print(f"{agent}: {newest.job} is awaiting approval ({newest.id})", file=sys.stderr)
        if newest.status.is_final:
            return newest
        await asyncio.sleep(POLL_S)


_NOT_STARTED = frozenset({S.PENDING, S.AWAITING_APPROVAL, S.QUEUED})


async def stream_log(fleet: Fleet, agent: str, exec_id: str) -> None:
    """Copy one execution's output to ours, live, until it has finished."""
    from console.fleet.link import AgentError

    try:
        async for piece in fleet.follow_log(agent, exec_id, 0):
            if piece.stream == "dropped":
                print(
                    f"[... {piece.dropped_bytes} bytes dropped by the log cap ...]", file=sys.stderr
                )
            else:
                write_output(piece.stream, piece.data)
    except AgentError as exc:
        # An execution skipped or cancelled before it started has no log: nothing to show.
        if exc.remote_code not in ("not_found", "unknown_execution"):
            raise


def run(args: argparse.Namespace) -> int:
    from console.fleet.link import AgentError
    from shared.protocol.messages import JobName

    params = parse_params(args.param)

    async def body(fleet: Fleet, up: list[str]) -> int:
        targets = list(up)
        if not args.on:
            targets = []
            for agent in up:
                try:
                    await fleet.call(agent, "jobs.get", JobName(name=args.job))
                except AgentError as exc:
                    if exc.remote_code != "unknown_job":
                        raise
                    continue
                targets.append(agent)
            if not targets:
                raise NoSuchJob(args.job, up)
        started: list[tuple[str, str]] = []
        failed = 0
        for agent in targets:
            try:
                exec_id = await fleet.trigger(args.job, agent, params)
            except SquError as exc:
                say_error("run", remote_message(exc))
                failed += 1
                continue
            started.append((agent, exec_id))
            if not args.json:
                print(f"{agent}: started {args.job} as {exec_id}", file=sys.stderr)
        if not args.wait:
            if args.json:
                print_json([{"agent": a, "execution_id": e} for a, e in started])
            return 1 if failed else 0
        stream = len(started) == 1 and not args.quiet and not args.json
        finals = await asyncio.gather(
            *(wait_run(fleet, agent, exec_id, stream=stream) for agent, exec_id in started)
        )
        code = 1 if failed else 0
        for (agent, _), final in zip(started, finals, strict=True):
            if not args.json:
                extra = f" exit {final.exit_code}" if final.exit_code is not None else ""
                print(f"{agent}: {args.job} {final.status}{extra} ({final.id})", file=sys.stderr)
            code = code or exit_code_of(final)
        if args.json:
            print_json(
                [{"agent": a, "execution": f} for (a, _), f in zip(started, finals, strict=True)]
            )
        return code

    return with_fleet(args, body)
