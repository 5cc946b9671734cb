"""The alerts part of ``AgentOps`` (docs/alerts.md, docs/protocol.md): list, ack, sync, feed.

A mixin of ``StoreOps``: it needs ``store`` and ``wall``, and ``record_audit``
(from ``ApprovalOps``) so that acknowledging is an audited action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentd.alerts import store as alert_sql
from shared.alerts import Alert, AlertsBatch, AlertsQuery, AlertsResult

__all__ = ["AlertOps"]


class AlertOps:
    """Mixin: needs ``store``, ``wall`` and ``record_audit``."""

    store: Any
    wall: Callable[[], float]

    async def list_alerts(self, query: AlertsQuery) -> AlertsResult:
        rows = await self.store.call(
            alert_sql.list_alerts,
            job=query.job,
            kind=query.kind.value if query.kind is not None else None,
            unacked=query.unacked,
            limit=query.limit,
            before_seq=query.before_seq,
        )
        return AlertsResult(alerts=rows, unacked=await self.store.call(alert_sql.unacked_count))

    async def ack_alerts(self, ids: list[str], *, by: str, origin: str) -> AlertsResult:
        """Acknowledge ``ids`` (UnknownAlert before any change); each new ack is audited."""
        before = {a.id: a for a in await self.store.call(alert_sql.list_alerts_by_id, ids)}
        rows = await self.store.call(alert_sql.ack, ids, by=by, now=self.wall())
        for alert in rows:
            was = before.get(alert.id)
            if was is not None and was.acked_at is None:
                await self.record_audit(  # type: ignore[attr-defined]
                    "alert.ack",
                    by=by,
                    target=alert.id,
                    origin=origin,
                    detail={"job": alert.job, "kind": alert.kind.value},
                )
        return AlertsResult(alerts=rows, unacked=await self.store.call(alert_sql.unacked_count))

    async def alerts_since(self, seq: int, limit: int) -> AlertsBatch:
        rows = await self.store.call(alert_sql.changes_since, seq, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return AlertsBatch(
            epoch=str(getattr(self.store, "epoch", "")),
            alerts=rows,
            next_seq=rows[-1].seq if rows else seq,
            more=more,
            unacked=await self.store.call(alert_sql.unacked_count),
        )

    async def alert_changes_since(self, seq: int) -> list[Alert]:
        """Alerts changed after ``seq`` (the ``alerts`` topic feed), at most 1,000."""
        rows: list[Alert] = await self.store.call(alert_sql.changes_since, seq, 1000)
        return rows

    async def latest_alert_seq(self) -> int:
        return int(await self.store.call(alert_sql.latest_alert_seq))
