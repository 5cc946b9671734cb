"""``ApprovalOps``: the approvals and audit half of ``AgentOps``, mixed into ``StoreOps``.

Kept apart from ``ops_store`` so each file has one job: this one turns wire
calls into ``agentd.approvals.ApprovalDesk`` and ``agentd.audit`` calls, and
gives ``StoreOps`` ``record_audit`` for the changes it makes itself (job
edits, runs, cancels), appended right after each change commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentd import approvals as approvals_sql
from agentd import audit
from agentd.approvals import ApprovalDesk
from shared.approvals import ApprovalInfo, ApprovalState, RunIntent
from shared.audit import AuditBatch, ChainReport
from shared.enums import Role
from shared.identity import Operator, parse_authorized_operators
from shared.models import JobRecord

__all__ = ["OPERATORS_FILE", "ApprovalOps", "read_operators"]

OPERATORS_FILE = "authorized_operators"


def read_operators(data_dir: Path) -> list[Operator]:
    """The agent's authorized_operators now (approvals are rare: read it each time)."""
    path = Path(data_dir) / OPERATORS_FILE
    return parse_authorized_operators(path.read_text(), str(path))


class ApprovalOps:
    """Mixin: needs ``store``, ``agent_name``, ``data_dir``, ``executor`` and ``wall``."""

    store: Any
    agent_name: str
    data_dir: Path
    executor: Any
    wall: Callable[[], float]
    _desk: ApprovalDesk | None = None

    @property
    def desk(self) -> ApprovalDesk:
        if self._desk is None:
            self._desk = ApprovalDesk(
                self.store,
                agent_name=self.agent_name,
                operators=lambda: read_operators(self.data_dir),
                start=self.executor.start if self.executor is not None else None,
                wall=self.wall,
            )
        return self._desk

    async def request_approval(
        self,
        record: JobRecord,
        *,
        params: dict[str, str],
        expires_in_s: float,
        comment: str,
        by: str,
        origin: str,
    ) -> ApprovalInfo:
        return await self.desk.request(
            record,
            params=params,
            requester=by,
            origin=origin,
            expires_in_s=expires_in_s,
            comment=comment,
        )

    async def get_approval(self, request_id: str) -> ApprovalInfo:
        return await self.desk.get(request_id)

    async def list_approvals(self, state: ApprovalState | None, limit: int) -> list[ApprovalInfo]:
        return await self.desk.list(state, limit)

    async def approve(
        self, intent: RunIntent, signature: str, *, by: str, origin: str
    ) -> ApprovalInfo:
        return await self.desk.approve(intent, signature, by=by, origin=origin)

    async def withdraw_approval(
        self, request_id: str, *, by: str, role: Role, comment: str, cancelling: bool, origin: str
    ) -> ApprovalInfo:
        return await self.desk.withdraw(
            request_id, by=by, role=role, comment=comment, cancelling=cancelling, origin=origin
        )

    async def approval_changes_since(self, seq: int) -> list[ApprovalInfo]:
        result: list[ApprovalInfo] = await self.store.call(approvals_sql.changes_since, seq)
        return result

    async def latest_approval_seq(self) -> int:
        return int(await self.store.call(approvals_sql.latest_seq))

    async def audit_since(
        self,
        seq: int,
        limit: int,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
    ) -> AuditBatch:
        head, entries = await self.store.call(_since, seq, limit + 1, actor, action, target)
        return AuditBatch(entries=entries[:limit], head=head, more=len(entries) > limit)

    async def audit_verify(self) -> ChainReport:
        report: ChainReport = await self.store.call(audit.verify)
        return report

    async def record_audit(
        self,
        action: str,
        *,
        by: str,
        target: str,
        origin: str = "wire",
        before_hash: str = "",
        after_hash: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry for a change this agent just accepted and committed."""
        await self.store.call(
            audit.append,
            at=self.wall(),
            actor=by,
            origin=origin,
            action=action,
            target=target,
            before_hash=before_hash,
            after_hash=after_hash,
            detail=detail,
        )


def _since(
    db: Any, seq: int, limit: int, actor: str | None, action: str | None, target: str | None
) -> tuple[Any, list[Any]]:
    # Head and page in one call on the store thread, so they describe the same moment.
    return audit.head(db), audit.entries_since(
        db, seq, limit, actor=actor, action=action, target=target
    )
