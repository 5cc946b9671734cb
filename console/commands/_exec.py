"""Finding which agent holds an execution: ``ID@AGENT``, ``--on``, the mirror, or asking."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import SquError

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

__all__ = ["agents_from_mirror", "locate", "split_exec"]


class ExecutionNotFound(SquError):
    code = "unknown_execution"

    def __init__(self, exec_id: str, agents: list[str]) -> None:
        super().__init__(
            f"no execution {exec_id!r} on {', '.join(agents)} "
            "(give the full id, or ID@AGENT; `squ history` lists them)",
            execution_id=exec_id,
        )


def split_exec(text: str) -> tuple[str, str]:
    """``ID@AGENT`` -> (ID, AGENT); a bare ID -> (ID, "")."""
    exec_id, _, agent = text.partition("@")
    return exec_id.strip().upper(), agent.strip()


def agents_from_mirror(mirror_file: Path, exec_id: str) -> tuple[str, list[str]]:
    """(full id, agents that ran it) for an id or a unique prefix known to the mirror."""
    from console.fleet.mirror import Mirror

    if not mirror_file.exists():
        return exec_id, []
    mirror = Mirror.open(mirror_file)
    try:
        runs = mirror.find_runs(exec_id, limit=20)
    finally:
        mirror.close()
    ids = {r.execution.id for r in runs}
    if len(ids) != 1:
        return exec_id, []
    return ids.pop(), sorted({r.agent for r in runs})


async def locate(fleet: Fleet, exec_id: str, up: list[str]) -> str:
    """The one up agent holding ``exec_id``; asks each (a full id is unique per agent)."""
    from console.fleet.link import AgentError
    from shared.protocol.messages import ExecutionId

    holders = []
    for agent in up:
        try:
            await fleet.call(agent, "executions.get", ExecutionId(execution_id=exec_id))
        except AgentError as exc:
            if exc.remote_code in ("unknown_execution", "not_found"):
                continue
            raise
        holders.append(agent)
    if not holders:
        raise ExecutionNotFound(exec_id, up)
    if len(holders) > 1:
        # Scheduled ids derive from (job, tick): the same job on two agents shares one.
        raise SquError(f"{exec_id} exists on {', '.join(holders)}: say which with ID@AGENT")
    return holders[0]
