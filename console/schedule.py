"""A job's schedule for display: in words, next fire times in the job's zone and UTC.

Thin over ``shared.cron`` (which owns the DST rules); pure apart from the
``now`` passed in. A job without its own zone runs in its agent's zone
(DESIGN.md), which the console learns from the agent's hello; UTC when unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from shared import cron
from shared.errors import SquError
from shared.models import Job

__all__ = ["Preview", "job_zone", "preview"]


@dataclass(frozen=True, slots=True)
class Preview:
    words: str  # "At 02:30", "manual only", or why the schedule is invalid
    zone: ZoneInfo
    times: tuple[datetime, ...]  # aware, in ``zone``
    error: str = ""


def job_zone(job: Job, agent_zone: str = "") -> ZoneInfo:
    for name in (job.timezone, agent_zone):
        if name:
            try:
                return cron.load_zone(name)
            except SquError:
                continue
    return ZoneInfo("UTC")


def preview(job: Job, *, now: float, n: int = 10, agent_zone: str = "") -> Preview:
    """Words and the next ``n`` fire times of ``job`` after ``now``; never raises."""
    zone = job_zone(job, agent_zone)
    after = datetime.fromtimestamp(now, UTC)
    try:
        if job.cron:
            words = cron.describe(job.cron)
            times = tuple(cron.next_fire_times(job.cron, tz=zone, after=after, n=n))
            return Preview(words, zone, times)
        if job.at:
            when = cron.parse_at(job.at, zone)
            upcoming = (when,) if when > after else ()
            return Preview(f"Once at {when:%Y-%m-%d %H:%M %Z}", zone, upcoming)
    except SquError as exc:
        return Preview("invalid schedule", zone, (), error=exc.message)
    return Preview("manual only", zone, ())
