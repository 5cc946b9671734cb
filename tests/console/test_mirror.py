"""The console's mirror: idempotent sync batches, epochs, gaps, paging and aggregates."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.fleet.mirror import Mirror, MirrorError, RunFilter, ulid_floor
from shared.enums import ExecutionStatus, Trigger
from shared.ids import scheduled_execution_id
from shared.models import Execution, Job, JobRecord

T0 = 1_800_000_000.0


def run(
    job: str, n: int, *, status: str = "success", seq: int = 1, server: str = "db1"
) -> Execution:
    at = T0 + n * 60
    return Execution(
        id=scheduled_execution_id(job, at),
        job=job,
        server=server,
        run_id=scheduled_execution_id(job, at),
        trigger=Trigger.SCHEDULE,
        status=ExecutionStatus(status),
        seq=seq,
        scheduled_for=at,
        created_at=at,
        duration_ms=1000 + n,
    )


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    m = Mirror.open(tmp_path / "mirror.db")
    yield m
    m.close()


def test_repeated_batch_changes_nothing(mirror: Mirror) -> None:
    """Upserting the same batch twice leaves one row per execution and the same cursor."""
    batch = [run("backup", i, seq=i + 1) for i in range(5)]
    mirror.upsert_executions("db1", "E1", batch, next_seq=5)
    mirror.upsert_executions("db1", "E1", batch, next_seq=5)
    assert mirror.count_runs(RunFilter()) == 5
    assert mirror.cursor("db1") == ("E1", 5)


def test_older_version_never_replaces_newer(mirror: Mirror) -> None:
    """A late batch with a lower seq for a row does not move it backwards."""
    mirror.upsert_executions("db1", "E1", [run("backup", 1, status="success", seq=9)], next_seq=9)
    mirror.upsert_executions("db1", "E1", [run("backup", 1, status="running", seq=4)], next_seq=4)
    stored = mirror.page_runs(RunFilter(), None, 10)
    assert [r.execution.status for r in stored] == ["success"]
    assert mirror.cursor("db1") == ("E1", 9)


def test_new_epoch_resets_cursor_and_is_recorded(mirror: Mirror) -> None:
    """A batch from a new epoch starts the cursor from the batch and records the epoch."""
    mirror.upsert_executions("db1", "E1", [run("backup", 1, seq=50)], next_seq=50)
    mirror.upsert_executions("db1", "E2", [run("backup", 2, seq=1)], next_seq=1)
    assert mirror.cursor("db1") == ("E2", 1)
    assert mirror.epochs("db1") == ["E1", "E2"]


def test_reset_epoch_sets_cursor_to_zero(mirror: Mirror) -> None:
    """An agent reporting an unknown epoch makes the next sync start from zero."""
    mirror.upsert_executions("db1", "E1", [run("backup", 1, seq=50)], next_seq=50)
    mirror.reset_epoch("db1", "E9")
    assert mirror.cursor("db1") == ("E9", 0)


def test_gap_is_recorded(mirror: Mirror) -> None:
    """A history floor above our cursor is kept as a gap for that agent."""
    mirror.record_gap("db1", "E1", after_seq=10, floor_seq=400)
    assert mirror.gaps("db1") == [("E1", 10, 400)]


def test_keyset_pages_cover_every_row_once(mirror: Mirror) -> None:
    """Walking pages with the last key returns every run once, newest first."""
    mirror.upsert_executions("db1", "E1", [run("backup", i) for i in range(25)], next_seq=25)
    mirror.upsert_executions("web1", "W1", [run("backup", i) for i in range(25)], next_seq=25)
    seen = []
    key = None
    while page := mirror.page_runs(RunFilter(), key, 7):
        seen.extend(r.key for r in page)
        key = page[-1].key
    assert len(seen) == 50 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


def test_filters_by_job_status_and_time(mirror: Mirror) -> None:
    """Job, status and since filters combine."""
    rows = [run("backup", i, status="failed" if i % 2 else "success") for i in range(10)]
    rows += [run("rotate", i) for i in range(10)]
    mirror.upsert_executions("db1", "E1", rows, next_seq=20)
    flt = RunFilter(job="backup", statuses=frozenset({"failed"}), since=T0 + 5 * 60)
    assert [r.execution.scheduled_for for r in mirror.page_runs(flt, None, 50)] == [
        T0 + 9 * 60,
        T0 + 7 * 60,
        T0 + 5 * 60,
    ]


def test_text_filter_is_a_regex_and_inverts(mirror: Mirror) -> None:
    """The / filter matches job/agent/status text by regex; invert keeps the rest."""
    rows = [run("backup", 1), run("rotate-logs", 2), run("rotate-tmp", 3)]
    mirror.upsert_executions("db1", "E1", rows, next_seq=3)
    assert mirror.count_runs(RunFilter(text="^rot")) == 2
    assert mirror.count_runs(RunFilter(text="^rot", invert=True)) == 1


def test_bad_regex_names_the_filter(mirror: Mirror) -> None:
    """An invalid pattern is a MirrorError quoting it, not an sqlite traceback."""
    with pytest.raises(MirrorError, match=r"'\(unclosed'"):
        mirror.count_runs(RunFilter(text="(unclosed"))


def test_job_summary_aggregates(mirror: Mirror) -> None:
    """The Jobs view gets last status, success rate and durations oldest first."""
    job = Job(name="backup", command="true", cron="0 * * * *")
    record = JobRecord(
        job=job, version=3, source="console", definition_hash="h", created_at=T0, updated_at=T0
    )
    mirror.put_jobs("db1", [record], replace_all=True)
    rows = [run("backup", i, status="failed" if i == 3 else "success") for i in range(4)]
    mirror.upsert_executions("db1", "E1", rows, next_seq=4)
    (summary,) = mirror.job_summaries()
    assert (summary.name, summary.agents, summary.last_status) == ("backup", ("db1",), "failed")
    assert summary.success_rate == 0.75
    assert summary.durations_ms == (1000, 1001, 1002, 1003)


def test_ulid_floor_orders_like_time() -> None:
    """The id bound for a time sorts between ids made before and after it."""
    assert scheduled_execution_id("a", T0 - 1) < ulid_floor(T0) <= scheduled_execution_id("a", T0)
