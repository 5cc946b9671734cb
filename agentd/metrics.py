"""The agent's metrics, rendered in the Prometheus text format 0.0.4.

Two layers:

* :class:`Registry` holds counters, gauges and histograms with labels and
  renders them (``render() -> str``); no I/O, testable in one line.
* :class:`AgentMetrics` fills a registry from a running :class:`agentd.daemon.Agent`.
  It never hooks into the executor: on each scrape it reads the store's change
  feed (``executions.changes_since``, the same cursor consoles sync with) from
  where the last scrape stopped, and counts each execution once when it reaches
  a final status. So counting survives any code path that finishes an
  execution (exits, reconciliation, cancels, skips) and costs nothing between
  scrapes. Counters start at zero when the agent starts (Prometheus treats that
  as a counter reset); ``last success`` times are read back from the store.

Series (all prefixed ``squ_agentd_``): ``executions_total{job,status}``,
``execution_duration_seconds{job}`` (histogram), ``start_lag_seconds``
(histogram: due time -> process started, scheduled runs only),
``running_executions``, ``last_success_timestamp_seconds{job}``,
``scheduler_lag_seconds`` (how far past due the earliest job is: stays near
zero unless the scheduler is stuck), ``sync_backlog`` (exits reported by the
supervisor and not yet recorded in the store), ``history_seq`` (the sync
cursor's high-water mark), ``alert_delivery_failures_total{channel}`` and
``alert_deliveries{channel,state}`` (read from the alerts tables), ``jobs``,
``refusing_new_work``, ``up`` and ``start_time_seconds``.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DURATION_BUCKETS_S",
    "LAG_BUCKETS_S",
    "AgentMetrics",
    "Registry",
    "escape_label",
    "format_value",
]

DURATION_BUCKETS_S = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)
FINAL = frozenset({"success", "failed", "timeout", "cancelled", "skipped", "lost"})
FEED_BATCH = 1000
REMEMBER_IDS = 20_000  # executions already counted, so a later update is not counted twice

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a decimal point, ``+Inf``/``-Inf``/``NaN`` spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@functools.lru_cache(maxsize=8192)  # the same series render on every scrape
def _labels_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels) + "}"


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    buckets: tuple[float, ...] = ()
    values: dict[Labels, float] = field(default_factory=dict)
    hist: dict[Labels, list[float]] = field(default_factory=dict)  # bucket counts + [sum, count]


class Registry:
    """Metric families by name. Declare with ``counter``/``gauge``/``histogram``, then update."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help: str) -> None:
        self._families[name] = _Family(name, "counter", help)

    def gauge(self, name: str, help: str) -> None:
        self._families[name] = _Family(name, "gauge", help)

    def histogram(self, name: str, help: str, buckets: Iterable[float]) -> None:
        self._families[name] = _Family(name, "histogram", help, tuple(sorted(buckets)))

    def _family(self, name: str, kind: str) -> _Family:
        family = self._families.get(name)
        if family is None or family.kind != kind:
            raise KeyError(f"no {kind} named {name!r} declared")  # our own misuse: fail loudly
        return family

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {name} cannot go down (got {amount})")
        family = self._family(name, "counter")
        key = tuple(sorted(labels.items()))
        family.values[key] = family.values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        family = self._family(name, "gauge")
        family.values[tuple(sorted(labels.items()))] = float(value)

    def replace(self, name: str, values: Mapping[Labels, float]) -> None:
        """Set a gauge's whole series at once (series not in ``values`` disappear)."""
        family = self._family(name, "gauge")
        family.values = dict(values)

    def observe(self, name: str, value: float, **labels: str) -> None:
        family = self._family(name, "histogram")
        key = tuple(sorted(labels.items()))
        counts = family.hist.setdefault(key, [0.0] * (len(family.buckets) + 2))
        for i, bound in enumerate(family.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-2] += value
        counts[-1] += 1

    def value(self, name: str, **labels: str) -> float | None:
        """A counter's or gauge's current value (tests and ``doctor``); None if never set."""
        family = self._families[name]
        return family.values.get(tuple(sorted(labels.items())))

    def render(self) -> str:
        """Every family in the text exposition format 0.0.4, ending with a newline."""
        lines: list[str] = []
        for family in self._families.values():
            help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {family.name} {help_text}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            if family.kind == "histogram":
                lines.extend(_histogram_lines(family))
                continue
            for labels, value in sorted(family.values.items()):
                lines.append(f"{family.name}{_labels_text(labels)} {format_value(value)}")
        return "\n".join(lines) + "\n"


def _histogram_lines(family: _Family) -> list[str]:
    # Rendering runs on the agent's event loop: label text and bucket bounds are built
    # once per series, counts are integers (a few ms for hundreds of jobs, not tens).
    lines = []
    bounds = [format_value(b) for b in family.buckets]
    name = family.name
    for labels, counts in sorted(family.hist.items()):
        inner = _labels_text(labels)[1:-1]
        prefix = f"{name}_bucket{{{inner}," if inner else f"{name}_bucket{{"
        for bound, count in zip(bounds, counts, strict=False):
            lines.append(f'{prefix}le="{bound}"}} {int(count)}')
        lines.append(f'{prefix}le="+Inf"}} {int(counts[-1])}')
        plain = _labels_text(labels)
        lines.append(f"{name}_sum{plain} {format_value(counts[-2])}")
        lines.append(f"{name}_count{plain} {int(counts[-1])}")
    return lines


def _max_seq(db: Any) -> int:
    row = db.execute("SELECT coalesce(max(seq), 0) FROM executions").fetchone()
    return int(row[0])


def _alert_deliveries(db: Any) -> tuple[list[tuple[int, str]], dict[tuple[str, str], int]]:
    """(failed delivery ids with their channel, {(channel, state): count}) from the alerts store.

    Empty when the alerts tables do not exist (an agent built without them).
    """
    if "alert_deliveries" not in db.table_names():
        return [], {}
    failed = db.execute(
        "SELECT id, channel FROM alert_deliveries WHERE state = 'failed' ORDER BY id"
    ).fetchall()
    counts = db.execute(
        "SELECT channel, state, count(*) FROM alert_deliveries GROUP BY channel, state"
    ).fetchall()
    return [(int(i), str(c)) for i, c in failed], {(str(c), str(st)): int(n) for c, st, n in counts}


def _last_successes(db: Any) -> dict[str, float]:
    rows = db.execute(
        "SELECT job, max(finished_at) FROM executions "
        "WHERE status = 'success' AND finished_at IS NOT NULL GROUP BY job"
    ).fetchall()
    return {str(job): float(ts) for job, ts in rows}


class AgentMetrics:
    """The agent's registry, brought up to date from the agent on each ``render()``.

    Create after the agent has opened its store; call ``await prime()`` once,
    then ``await render()`` per scrape (the HTTP endpoint does). Alert senders
    call :meth:`count_alert_failure` when a delivery fails for good.
    """

    def __init__(self, agent: Any, *, clock: Any = time.time) -> None:
        self.agent = agent
        self.clock = clock
        self.registry = r = Registry()
        r.gauge("squ_agentd_up", "1 while the agent serves.")
        r.gauge("squ_agentd_start_time_seconds", "When this agent process started (Unix time).")
        r.counter(
            "squ_agentd_executions_total",
            "Executions that reached a final status since the agent started, by job and status.",
        )
        r.histogram(
            "squ_agentd_execution_duration_seconds",
            "Wall-clock duration of finished executions, by job.",
            DURATION_BUCKETS_S,
        )
        r.histogram(
            "squ_agentd_start_lag_seconds",
            "Scheduled executions: seconds from the due time to the process start.",
            LAG_BUCKETS_S,
        )
        r.gauge("squ_agentd_running_executions", "Executions running now.")
        r.gauge(
            "squ_agentd_last_success_timestamp_seconds",
            "When each job last finished with success (Unix time).",
        )
        r.gauge(
            "squ_agentd_scheduler_lag_seconds",
            "How far past its due time the earliest job is (0 unless the scheduler is behind).",
        )
        r.gauge(
            "squ_agentd_sync_backlog",
            "Exits reported by the supervisor not yet recorded in the store.",
        )
        r.gauge("squ_agentd_history_seq", "The store's change counter (the consoles' sync cursor).")
        r.counter(
            "squ_agentd_alert_delivery_failures_total",
            "Alert deliveries given up after their last attempt, by channel.",
        )
        r.gauge(
            "squ_agentd_alert_deliveries",
            "Alert deliveries held in the store, by channel and state (pending, sent, failed).",
        )
        r.gauge("squ_agentd_jobs", "Jobs in the agent's table.")
        r.gauge("squ_agentd_refusing_new_work", "1 while the agent starts no new work (disk full).")
        self._cursor = 0
        self._counted: OrderedDict[str, None] = OrderedDict()
        self._lagged: OrderedDict[str, None] = OrderedDict()
        self._last_success: dict[str, float] = {}
        self._failed_deliveries: OrderedDict[str, None] = OrderedDict()

    async def prime(self) -> None:
        """Start counting from now: skip old history, read each job's last success."""
        store = self.agent.store
        self._cursor = await store.call(_max_seq)
        self._last_success = await store.call(_last_successes)
        failed, _ = await store.call(_alert_deliveries)
        for delivery_id, _channel in failed:  # failures before this start are not re-counted
            _remember(self._failed_deliveries, str(delivery_id))
        self.registry.set("squ_agentd_start_time_seconds", float(self.agent.started_at))

    def count_alert_failure(self, channel: str) -> None:
        """An alert to ``channel`` failed for good outside the store (the store's are read)."""
        self.registry.inc("squ_agentd_alert_delivery_failures_total", channel=channel)

    def observe(self, ex: Any) -> None:
        """Account for one execution as read from the change feed (idempotent per id)."""
        status = str(ex.status)
        if (
            str(ex.trigger) == "schedule"
            and ex.started_at is not None
            and ex.scheduled_for is not None
            and ex.id not in self._lagged
        ):
            _remember(self._lagged, ex.id)
            lag = max(0.0, float(ex.started_at) - float(ex.scheduled_for))
            self.registry.observe("squ_agentd_start_lag_seconds", lag)
        if status not in FINAL or ex.id in self._counted:
            return
        _remember(self._counted, ex.id)
        self.registry.inc("squ_agentd_executions_total", job=ex.job, status=status)
        duration: float | None = None
        if ex.duration_ms is not None:
            duration = ex.duration_ms / 1000
        elif ex.started_at is not None and ex.finished_at is not None:
            duration = max(0.0, float(ex.finished_at) - float(ex.started_at))
        if duration is not None:
            self.registry.observe("squ_agentd_execution_duration_seconds", duration, job=ex.job)
        if status == "success" and ex.finished_at is not None:
            previous = self._last_success.get(ex.job, 0.0)
            self._last_success[ex.job] = max(previous, float(ex.finished_at))

    async def refresh(self) -> None:
        """Read the change feed since the last call and update every series."""
        from agentd.store import executions as ex_sql

        store = self.agent.store
        while True:
            rows = await store.call(ex_sql.changes_since, self._cursor, FEED_BATCH)
            for ex in rows:
                self.observe(ex)
                self._cursor = max(self._cursor, int(ex.seq))
            if len(rows) < FEED_BATCH:
                break
        # Alert deliveries live in the store (agentd.alerts): count each that gave up once.
        failed, counts = await store.call(_alert_deliveries)
        for delivery_id, channel in failed:
            if str(delivery_id) not in self._failed_deliveries:
                _remember(self._failed_deliveries, str(delivery_id))
                self.count_alert_failure(channel)
        self.registry.replace(
            "squ_agentd_alert_deliveries",
            {(("channel", c), ("state", st)): float(n) for (c, st), n in counts.items()},
        )
        self._gauges()

    def _gauges(self) -> None:
        r, agent, now = self.registry, self.agent, float(self.clock())
        executor, scheduler = agent.executor, agent.scheduler
        r.set("squ_agentd_up", 1)
        r.set("squ_agentd_jobs", len(agent.jobs))
        running = sum(len(ids) for ids in executor.active.values()) if executor else 0
        r.set("squ_agentd_running_executions", running)
        r.set("squ_agentd_refusing_new_work", 1 if executor and executor.refusing_reason else 0)
        # The executor keeps exits it could not commit yet (disk full, store error) here.
        r.set("squ_agentd_sync_backlog", len(getattr(executor, "_unacked", {}) or {}))
        r.set("squ_agentd_history_seq", self._cursor)
        lag = 0.0
        if scheduler is not None:
            dues = [scheduler.next_due(name) for name in list(agent.jobs)]
            earliest = min((d for d in dues if d is not None), default=None)
            if earliest is not None:
                lag = max(0.0, now - earliest)
        r.set("squ_agentd_scheduler_lag_seconds", lag)
        r.replace(
            "squ_agentd_last_success_timestamp_seconds",
            {(("job", job),): ts for job, ts in self._last_success.items()},
        )

    async def render(self) -> str:
        """Bring every series up to date and return the exposition text (one scrape)."""
        await self.refresh()
        return self.registry.render()


def _remember(seen: OrderedDict[str, None], key: str) -> None:
    seen[key] = None
    if len(seen) > REMEMBER_IDS:
        seen.popitem(last=False)
