"""The delivery loop: new alerts -> channels, within the rate limit, retried until delivered.

``AlertDispatcher.run()`` is one task of the daemon. Each turn (soon after
``wake()``, which the daemon calls on every execution change; when a pending
delivery is due; at the next long-running check; at most once per ``poll_s``,
and never more than ``IDLE_MAX_SLEEP_S`` apart) it:

1. routes alerts not yet routed: one pending delivery per channel the job's
   policy (or the agent's defaults) names, in one transaction;
2. groups due deliveries into messages per (channel, job), holding a job at
   its rate limit so that its next message is a digest
   (``shared.alerts.plan_messages``);
3. sends each message and records the outcome on every delivery in it: sent,
   or failed with the reason and the time of the next attempt (doubling
   backoff), or given up after ``max_attempts``.

Everything it needs is in the store, so an agent restart, or a receiver that is
down for hours, loses nothing: the next turn picks up where the last stopped.
A receiver can tell a repeated message by its ``message_id`` and each alert by
its ``id``. Every ``long_running_check_s`` it also looks for running
executions past their job's long-running threshold and records that alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agentd.alerts import store as alert_sql
from agentd.alerts.channels import Channel, DeliveryFailed, make_channel
from agentd.alerts.config import AlertsConfig
from agentd.store import Store
from shared import alerts as rules
from shared.enums import AlertKind
from shared.models import JobRecord

__all__ = ["AlertDispatcher"]

log = logging.getLogger("agentd.alerts")

# Messages sent at once; a slow receiver holds only its own message.
MAX_PARALLEL_SENDS = 8
# Issue 8: with nothing pending the loop sleeps this long at most (an alert recorded
# without a wake(), e.g. by a request withdrawn over the wire, waits no longer).
IDLE_MAX_SLEEP_S = 10.0


class AlertDispatcher:
    """Routes and delivers recorded alerts; one per agent, ``run()`` until cancelled."""

    def __init__(
        self,
        *,
        store: Store,
        config: AlertsConfig,
        agent: str,
        data_dir: Path,
        jobs: Callable[[], Mapping[str, JobRecord]],
        wall: Callable[[], float] = time.time,
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.agent = agent
        self.jobs = jobs
        self.wall = wall
        self.channels: dict[str, Channel] = dict(
            channels
            if channels is not None
            else {
                name: make_channel(name, cfg, data_dir=data_dir, agent=agent)
                for name, cfg in config.channel.items()
            }
        )
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._last_long_check = 0.0
        self._sending = asyncio.Semaphore(MAX_PARALLEL_SENDS)

    def wake(self) -> None:
        """Run a turn now (an alert was just recorded), instead of at the next poll."""
        self._wake.set()

    async def drain(self, timeout_s: float) -> None:
        """Stop starting turns and wait up to ``timeout_s`` for the one in progress.

        A message a receiver has taken is then recorded as sent before the agent
        stops, instead of being sent again after the restart.
        """
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def run(self) -> None:
        """Turn until cancelled or drained; a failing turn is logged and the loop carries on."""
        while not self._stopping:
            self._idle.clear()
            # Cleared before the turn: a wake() during it means another turn soon.
            self._wake.clear()
            turned_at = time.monotonic()
            delay_s = self.config.poll_s
            try:
                await self.turn()
                delay_s = await self._next_turn_in_s()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert delivery turn failed; carrying on")
            finally:
                self._idle.set()
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay_s)
            if not self._stopping:
                # A burst of changes wakes it many times: still one turn per poll_s at most.
                await asyncio.sleep(max(0.0, turned_at + self.config.poll_s - time.monotonic()))

    async def _next_turn_in_s(self) -> float:
        """How long the loop may sleep: until a pending delivery or the long-running check."""
        next_at = self._last_long_check + self.config.long_running_check_s
        pending_at = await self.store.call(alert_sql.next_attempt_at)
        if pending_at is not None:
            next_at = min(next_at, pending_at)
        return min(IDLE_MAX_SLEEP_S, max(self.config.poll_s, next_at - self.wall()))

    async def turn(self) -> int:
        """One pass: long-running check (when due), route, send what is due. Returns sends."""
        now = self.wall()
        if now - self._last_long_check >= self.config.long_running_check_s:
            self._last_long_check = now
            await self.check_long_running(now)
        await self._route(now)
        due = await self.store.call(alert_sql.due_deliveries, now=now)
        if not due:
            return 0
        window = self.config.rate_limit.window_s
        recent = await self.store.call(alert_sql.sent_counts, since=now - window)
        messages = rules.plan_messages(due, recent, self.config.rate_limit)
        await asyncio.gather(*(self._send(m) for m in messages))
        return len(messages)

    async def _route(self, now: float) -> None:
        fresh = await self.store.call(alert_sql.unrouted)
        if not fresh:
            return
        table = self.jobs()
        plan = []
        for alert in fresh:
            record = table.get(alert.job)
            policy = record.job.alerts if record is not None else None
            names = rules.channels_for(
                alert.kind,
                policy,
                default_channels=self.config.channels,
                default_on=self.config.on,
            )
            unknown = [n for n in names if n not in self.channels]
            if unknown:
                log.error(
                    "alert %s: job %s names channel(s) %s not in agentd.toml [alerts.channel.*]",
                    alert.id,
                    alert.job,
                    ", ".join(unknown),
                )
            plan.append((alert, names))
        await self.store.call(alert_sql.route, plan, now=now)

    async def _send(self, message: rules.Message) -> None:
        now = self.wall()
        message_id = f"{self.agent}-{int(now * 1000)}-{secrets.token_hex(4)}"
        channel = self.channels.get(message.channel)
        if channel is None:
            # Configured when the alert was routed, gone since (edited agentd.toml): say so.
            await self.store.call(
                alert_sql.record_outcome,
                list(message.delivery_ids),
                now=now,
                message_id=message_id,
                error=f"channel {message.channel!r} is not configured in agentd.toml",
                state="dropped",
            )
            return
        body = rules.message_body(message, agent=self.agent, message_id=message_id, now=now)
        record = self.jobs().get(message.job)
        recipients = rules.email_recipients(
            record.job.alerts if record is not None else None,
            record.job.labels if record is not None else {},
            (),
        )
        async with self._sending:
            try:
                await channel.send(body, recipients)
            except DeliveryFailed as exc:
                await self._failed(message, message_id, exc.why)
                return
            except Exception as exc:
                log.exception("channel %s failed unexpectedly", message.channel)
                await self._failed(message, message_id, f"internal error: {exc}")
                return
        await self.store.call(
            alert_sql.record_outcome,
            list(message.delivery_ids),
            now=self.wall(),
            message_id=message_id,
        )
        log.info(
            "alert %s sent on %s: %s",
            message_id,
            message.channel,
            body["summary"],
        )

    async def _failed(self, message: rules.Message, message_id: str, why: str) -> None:
        ids = list(message.delivery_ids)
        attempts = await self.store.call(alert_sql.delivery_attempts, ids) + 1
        now = self.wall()
        if attempts >= self.config.max_attempts:
            log.error(
                "alert delivery on %s gave up after %d attempts: %s", message.channel, attempts, why
            )
            await self.store.call(
                alert_sql.record_outcome,
                ids,
                now=now,
                message_id=message_id,
                error=why,
                state="failed",
            )
            return
        delay = rules.retry_delay_s(
            attempts, base_s=self.config.retry_base_s, max_s=self.config.retry_max_s
        )
        log.warning(
            "alert delivery on %s failed (attempt %d): %s; next in %.0f s",
            message.channel,
            attempts,
            why,
            delay,
        )
        await self.store.call(
            alert_sql.record_outcome,
            ids,
            now=now,
            message_id=message_id,
            error=why,
            next_attempt_at=now + delay,
        )

    async def check_long_running(self, now: float) -> int:
        """Record a long-running alert for each running execution past its threshold."""
        candidates = await self.store.call(alert_sql.long_running_candidates)
        table = self.jobs()
        factor = self.config.long_running_factor or None
        recorded = 0
        for ex, durations in candidates:
            record = table.get(ex.job)
            policy = record.job.alerts if record is not None else None
            threshold = rules.long_running_threshold_s(
                policy, default_factor=factor, recent_durations_ms=durations
            )
            if threshold is None or ex.started_at is None or now - ex.started_at < threshold:
                continue
            alert = rules.alert_from_execution(
                ex, AlertKind.LONG_RUNNING, job=record.job if record else None, now=now
            )
            if await self.store.call(alert_sql.insert_alert, alert) is not None:
                recorded += 1
        return recorded
