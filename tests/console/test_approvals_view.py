"""Pilot tests of the Approvals (5) and Audit (6) views over fixed data (StaticFleet)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.app import SquApp
from console.screens.approvals import ApprovalsScreen
from console.screens.audit import AuditScreen
from console.theme import TuiConfig
from shared.approvals import ApprovalInfo, ApprovalState, RunIntent
from shared.audit import AuditEntry, Head, make_entry
from shared.models import Job
from tests.console import fixed

INTENT = RunIntent(
    request_id="01JD3N2A7C9E1G3J5K7M9P1R3T",
    agent="db1",
    job="deploy",
    definition_hash="a" * 64,
    execution_id="01JD3N2A7C9E1G3J5K7M9P1R3X",
    params={"version": "1.4.2"},
    requester="alice",
    requested_at=fixed.NOW - 60,
    expires_at=fixed.NOW + 3600,
    nonce="n" * 32,
)
INFO = ApprovalInfo(
    intent=INTENT,
    state=ApprovalState.PENDING,
    comment="hotfix [bold]not markup[/bold]",
    definition=Job(name="deploy", command="deploy.sh --version $SQU_PARAM_VERSION"),
    last_approved=Job(name="deploy", command="deploy.sh"),
)


def audit_log(n: int, *, tamper_at: int | None = None) -> list[AuditEntry]:
    entries, head = [], Head()
    for i in range(n):
        entry = make_entry(
            head,
            at=fixed.NOW - 100 + i,
            actor="alice" if i % 2 else "bob",
            origin="wire 10.0.0.5:4000",
            action="job.put" if i % 2 else "approval.approved",
            target=f"job{i}",
        )
        head = Head(seq=entry.seq, hash=entry.hash)
        entries.append(entry)
    if tamper_at is not None:
        import msgspec

        entries[tamper_at] = msgspec.structs.replace(entries[tamper_at], actor="mallory")
    return entries


def make_app(tmp_path: Path, *, tamper_at: int | None = None) -> SquApp:
    fleet = fixed.fleet()
    up = fleet.states[0].name
    fleet.approvals = {up: [INFO]}
    fleet.audit = {up: audit_log(4, tamper_at=tamper_at)}
    mirror = fixed.build_mirror(tmp_path / "mirror.db")
    config = TuiConfig(tz=UTC, cursor_blink=False)
    return SquApp(mirror, fleet, clock=lambda: fixed.NOW, config=config)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def rows(app: SquApp, selector: str) -> int:
    return app.screen.query_one(selector, DataTable).row_count


def text(app: SquApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_key_5_lists_pending_requests_with_the_intent(tmp_path: Path) -> None:
    """5 opens Approvals: the pending request and its intent with the diff, markup inert."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, ApprovalsScreen))
        await until(pilot, lambda: rows(app, "#approvals") == 1)
        shown = text(app, "#intent")
        assert "deploy.sh --version $SQU_PARAM_VERSION" in shown
        assert "version=1.4.2" in shown and "alice" in shown
        assert '-  "command": "deploy.sh"' in shown
        assert "[bold]not markup[/bold]" in shown


async def test_a_then_confirm_approves(tmp_path: Path) -> None:
    """a asks for confirmation, then sends the approval for the highlighted request."""
    app = make_app(tmp_path)
    fleet = app.fleet
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, ApprovalsScreen))
        await until(pilot, lambda: rows(app, "#approvals") == 1)
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#confirm")
        await until(pilot, lambda: bool(fleet.decided))  # type: ignore[attr-defined]
        assert fleet.decided[0][1:] == (INTENT.request_id, "approved")  # type: ignore[attr-defined]
        await until(pilot, lambda: rows(app, "#approvals") == 0)


async def test_x_rejects_with_a_comment(tmp_path: Path) -> None:
    """x asks why, and rejects with that comment."""
    app = make_app(tmp_path)
    fleet = app.fleet
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: rows(app, "#approvals") == 1)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press(*"freeze", "enter")
        await until(pilot, lambda: bool(fleet.decided))  # type: ignore[attr-defined]
        up = fleet.agents()[0].name
        assert fleet.approvals[up][0].decision_comment == "freeze"  # type: ignore[attr-defined]


async def test_key_6_shows_the_audit_log_verified(tmp_path: Path) -> None:
    """6 opens Audit: every entry, newest first, and the chain reported as verified."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        await until(pilot, lambda: rows(app, "#audit") == 4)
        assert "hash chains verified" in text(app, "#audit-status")


async def test_audit_view_flags_a_broken_chain(tmp_path: Path) -> None:
    """An edited entry in a synced page is shown as a broken chain naming the entry."""
    app = make_app(tmp_path, tamper_at=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: "BROKEN" in text(app, "#audit-status"))
        assert "entry 2" in text(app, "#audit-status")


async def test_audit_filter_narrows_rows(tmp_path: Path) -> None:
    """/ with a regex keeps only matching entries."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await until(pilot, lambda: rows(app, "#audit") == 4)
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"approval", "enter")
        await until(pilot, lambda: rows(app, "#audit") == 2)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_approvals_view_snapshot(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Approvals: the request row and its intent with the diff, as plain text."""

    async def loaded(pilot: Pilot[None]) -> None:
        await pilot.press("5")
        await until(pilot, lambda: rows(pilot.app, "#approvals") == 1)  # type: ignore[arg-type]

    assert snap_compare(make_app(tmp_path), run_before=loaded, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_audit_view_snapshot(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Audit: newest first, the chain reported verified."""

    async def loaded(pilot: Pilot[None]) -> None:
        await pilot.press("6")
        await until(pilot, lambda: rows(pilot.app, "#audit") == 4)  # type: ignore[arg-type]

    assert snap_compare(make_app(tmp_path), run_before=loaded, terminal_size=size)
