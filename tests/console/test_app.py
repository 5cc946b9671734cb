"""Pilot tests of the console's behaviour over fixed data (tests/console/fixed.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from console.app import SquApp
from console.fleet.source import ExecutionsChanged, LinkState, LogChunk, StaticFleet, with_link
from console.screens.job_detail import JobDetailScreen
from console.screens.job_editor import JobEditorScreen
from console.screens.jobs import JobsScreen
from console.screens.logs import LogScreen
from console.screens.runs import RunsScreen
from console.screens.servers import ServersScreen
from console.screens.trigger import TriggerDialog
from console.theme import TuiConfig
from console.widgets.log_view import LogView
from console.widgets.run_list import RunList
from shared.enums import ExecutionStatus, Trigger
from shared.models import Execution
from tests.console import fixed


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def toasts(app: SquApp) -> list[str]:
    return [n.message for n in app._notifications]


def static_text(app: SquApp, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)
    return str(widget.render())


def table_text(app: SquApp, selector: str) -> str:
    table = app.screen.query_one(selector, DataTable)
    rows = [table.get_row_at(index) for index in range(table.row_count)]
    return "\n".join(" ".join(str(cell) for cell in row) for row in rows)


async def test_number_keys_switch_views(tmp_path: Path) -> None:
    """1, 2 and 3 switch to Servers, Jobs and Runs."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServersScreen))
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))


async def test_slash_filters_runs_by_regex(tmp_path: Path) -> None:
    """/ with a regex keeps the runs whose job, agent or status match."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("slash", *"backup", "enter")
        run_list = app.screen.query_one(RunList)
        await until(pilot, lambda: run_list.total == 12)
        assert {run_list.row(i).execution.job for i in range(12)} == {"backup-db"}


async def test_slash_filter_with_bang_inverts(tmp_path: Path) -> None:
    """/!regex keeps the runs that do not match."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "slash", "exclamation_mark", *"backup", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_list = app.screen.query_one(RunList)
        await until(pilot, lambda: run_list.total == 38)


async def test_bad_filter_regex_is_a_toast(tmp_path: Path) -> None:
    """An invalid regex leaves the list as it was and says what is wrong."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "slash", "left_parenthesis", "enter")
        await until(pilot, lambda: any("not a valid regular expression" in t for t in toasts(app)))
        assert app.screen.query_one(RunList).total == 50


async def test_colon_runs_command_sets_filters(tmp_path: Path) -> None:
    """:runs job=... status=... shows only those runs."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"runs job=rotate-logs status=failed", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_list = app.screen.query_one(RunList)
        await until(pilot, lambda: run_list.filters.job == "rotate-logs")
        statuses = {run_list.row(i).execution.status for i in range(run_list.total)}
        assert run_list.total > 0 and statuses == {"failed"}


async def test_unknown_colon_command_is_named(tmp_path: Path) -> None:
    """A mistyped : command becomes a toast naming the word."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"frob", "enter")
        await until(pilot, lambda: any("unknown command 'frob'" in t for t in toasts(app)))


async def test_enter_opens_job_detail_and_escape_returns(tmp_path: Path) -> None:
    """Enter on a job drills into its detail; esc goes back to the list."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        assert app.screen.job_name == "backup-db"
        assert "At 02:30" in static_text(app, "#job-overview")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))


async def test_describe_shows_ten_fire_times_in_zone_and_utc(tmp_path: Path) -> None:
    """d opens the fire-times tab: ten times in the job's zone with UTC beside them."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "d")
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        text = static_text(app, "#job-fires")
        assert text.count("02:30 CET") == 10
        assert "2027-01-16 01:30" in text  # the same instant in UTC


async def test_editor_bad_cron_names_the_field(tmp_path: Path) -> None:
    """Typing an invalid cron shows an error that names the cron field, and marks it."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "e")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        cron = app.screen.query_one("#f-cron", Input)
        cron.focus()
        await pilot.press("ctrl+a", "ctrl+k", *"61 * * * *")
        await until(pilot, lambda: static_text(app, "#editor-error").startswith("cron:"))
        assert cron.has_class("-invalid")


async def test_editor_cron_preview_follows_typing(tmp_path: Path) -> None:
    """The cron field's description and next times update as it is typed."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "e")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        app.screen.query_one("#f-cron", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", *"0 4 * * *")
        await until(pilot, lambda: "At 04:00" in static_text(app, "#cron-preview"))
        assert static_text(app, "#editor-error") == "valid"


async def test_file_defined_job_opens_read_only(tmp_path: Path) -> None:
    """A job from a jobs.d file opens read-only and names the file to edit."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"edit rotate-logs", "enter")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        assert "/etc/squ-agentd/jobs.d/logs.toml" in static_text(app, "#editor-readonly")
        assert app.screen.query_one("#f-cron", Input).disabled


async def test_editor_save_reports_each_agent(tmp_path: Path) -> None:
    """Saving pushes to the ticked agents and lists success or the reason per agent."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "e")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        app.screen.query_one("#save-to").select("web2")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "web2" in static_text(app, "#save-results"))
        results = static_text(app, "#save-results")
        assert "db1: saved, version 4" in results
        assert "web2: not saved: agent web2 is down" in results
        assert [agent for agent, _ in app.fleet.saved] == ["db1"]


async def test_trigger_dialog_starts_on_cancel_and_shows_command(tmp_path: Path) -> None:
    """t opens the trigger dialog focused on Cancel with the equivalent squ command."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "t")
        await until(pilot, lambda: isinstance(app.screen, TriggerDialog))
        assert app.focused is not None and app.focused.id == "cancel"
        assert static_text(app, "#command") == "$ squ run backup-db --on db1"
        await pilot.press("enter")  # Cancel
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        assert app.fleet.triggered == []


async def test_trigger_dialog_parameter_override_reaches_the_fleet(tmp_path: Path) -> None:
    """A changed parameter shows in the command and is sent with the trigger."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "t")
        await until(pilot, lambda: isinstance(app.screen, TriggerDialog))
        app.screen.query_one("#param-full", Input).value = "true"
        await until(pilot, lambda: "--param full=true" in static_text(app, "#command"))
        await pilot.click("#run")
        await until(pilot, lambda: bool(app.fleet.triggered))
        assert app.fleet.triggered == [("backup-db", "db1", {"full": "true"})]


async def test_trigger_dialog_refuses_a_bad_parameter(tmp_path: Path) -> None:
    """A value the parameter's type refuses disables Run and names the parameter."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "t")
        await until(pilot, lambda: isinstance(app.screen, TriggerDialog))
        app.screen.query_one("#param-full", Input).value = "maybe"
        await until(pilot, lambda: "'full'" in static_text(app, "#param-error"))
        assert app.screen.query_one("#run").disabled


async def test_log_view_shows_hostile_output_inert(tmp_path: Path) -> None:
    """The stored log has no escape sequences, markup stays literal, the cap is marked."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {fixed.last_backup_id()}", "enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: len(view.shown_text()) == 5)
        lines = view.shown_text()
        assert lines[1] == "dumped 1200 tables"
        assert "5.0 MiB dropped by the log cap" in lines[2]
        assert lines[4] == "upload to s3 done [bold]not markup[/bold]"


async def test_log_view_appends_log_chunks(tmp_path: Path) -> None:
    """LogChunk messages for the open execution are appended, partial lines joined."""
    app = fixed.make_app(tmp_path)
    running = next(ex for _, ex in fixed.executions() if ex.status == "running")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {running.id} @web1", "enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        app.post_message(LogChunk("web1", running.id, "stdout", b"rotating acc"))
        app.post_message(LogChunk("web1", running.id, "stdout", b"ess.log\nnext\n"))
        app.post_message(LogChunk("web1", "OTHER", "stdout", b"not this one\n"))
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: view.shown_text() == ["rotating access.log", "next"])


async def test_new_lines_badge_while_follow_is_off(tmp_path: Path) -> None:
    """With follow off, arriving lines are counted in a "+N new lines" badge."""
    app = fixed.make_app(tmp_path)
    running = next(ex for _, ex in fixed.executions() if ex.status == "running")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {running.id} @web1", "enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        await pilot.press("f")
        app.post_message(LogChunk("web1", running.id, "stderr", b"one\ntwo\nthree\n"))
        badge = app.screen.query_one("#log-badge", Static)
        await until(pilot, lambda: badge.display and "+3 new lines" in str(badge.render()))
        await pilot.press("f")
        await until(pilot, lambda: not badge.display)


async def test_log_search_moves_between_hits(tmp_path: Path) -> None:
    """/ searches the log and n moves to the next matching line."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {fixed.last_backup_id()}", "enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: len(view.shown_text()) == 5)
        await pilot.press("slash", *"d", "enter")
        await until(pilot, lambda: view.match_line == 0)  # "starting dump"
        await pilot.press("n")
        await until(pilot, lambda: view.match_line == 1)  # "dumped 1200 tables"


async def test_down_agent_shows_stale(tmp_path: Path) -> None:
    """An agent that is down shows its last-known metrics marked stale."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServersScreen))
        rows = table_text(app, "#servers").splitlines()
        web2 = next(r for r in rows if r.startswith("web2"))
        assert "down" in web2 and "stale" in web2 and "88%" in web2


async def test_log_of_down_agent_falls_back_to_mirror_tails(tmp_path: Path) -> None:
    """Opening a log on a down agent shows the mirror's tails, marked, at once."""
    app = fixed.make_app(tmp_path)
    web2_failed = next(ex for a, ex in fixed.executions() if a == "web2" and ex.status == "failed")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {web2_failed.id} @web2", "enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: len(view.shown_text()) == 3)
        lines = view.shown_text()
        assert "agent web2 is down" in lines[0]
        assert lines[2] == "warning: disk 88%"


async def test_logs_command_asks_for_agent_when_id_is_shared(tmp_path: Path) -> None:
    """A scheduled id that two agents share needs @agent, and the toast says so."""
    app = fixed.make_app(tmp_path)
    running = next(ex for _, ex in fixed.executions() if ex.status == "running")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *f"logs {running.id}", "enter")
        await until(pilot, lambda: any("web1, web2: add @AGENT" in t for t in toasts(app)))


async def test_action_on_down_agent_fails_with_a_toast(tmp_path: Path) -> None:
    """Re-running on a down agent ends in a clear toast, not a hang."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"runs agent=web2", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("R")
        await until(pilot, lambda: app.screen.query("#confirm"))
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.click("#confirm")
        await until(pilot, lambda: any("agent web2 is down" in t for t in toasts(app)))


async def test_agent_state_change_redraws_servers(tmp_path: Path) -> None:
    """A link going down is shown on the Servers view within a refresh tick."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServersScreen))
        await until(pilot, lambda: app.fleet.post is not None)
        web1 = next(a for a in app.fleet.agents() if a.name == "web1")
        app.fleet.set_state(with_link(web1, LinkState.DOWN, at=fixed.NOW))

        def web1_down() -> bool:
            rows = table_text(app, "#servers").splitlines()
            return any(r.startswith("web1") and "down" in r for r in rows)

        await until(pilot, web1_down)


async def test_executions_changed_updates_runs_live(tmp_path: Path) -> None:
    """A new run stored by a link appears after ExecutionsChanged."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_list = app.screen.query_one(RunList)
        new = Execution(
            id="01ZZZZZZZZZZZZZZZZZZZZZZZZ", job="report", server="db1", run_id="r",
            trigger=Trigger.MANUAL, status=ExecutionStatus.QUEUED, seq=99,
        )  # fmt: skip
        app.mirror.upsert_executions("db1", "epoch-db1", [new], next_seq=99)
        app.post_message(ExecutionsChanged("db1", [new.id]))
        await until(pilot, lambda: run_list.total == 51)
        assert run_list.row(0).execution.id == new.id


async def test_remapped_key_switches_view(tmp_path: Path) -> None:
    """A keymap from the config moves a binding to another key."""
    mirror = fixed.build_mirror(tmp_path / "m.db")
    config = TuiConfig(theme="squ-dark", keymap={"app.runs": "r"})
    app = SquApp(mirror, fixed.fleet(), clock=lambda: fixed.NOW, config=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_command_palette_opens_a_job(tmp_path: Path) -> None:
    """ctrl+p lists the mirror's jobs; choosing one opens its detail."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("ctrl+p", *"Job: report")
        await until(pilot, lambda: bool(app.screen.query(CommandList)))
        await until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        assert app.screen.job_name == "report"


async def test_a_failing_fleet_is_a_toast_not_a_crash(tmp_path: Path) -> None:
    """If the fleet's run dies, the TUI says so and keeps showing the mirror."""

    class BrokenFleet(StaticFleet):
        async def run(self, post: object) -> None:
            raise RuntimeError("links gone")

    mirror = fixed.build_mirror(tmp_path / "m.db")
    fleet = BrokenFleet(states=list(fixed.AGENTS))
    app = SquApp(mirror, fleet, clock=lambda: fixed.NOW, config=TuiConfig(theme="squ-dark"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any("RuntimeError: links gone" in t for t in toasts(app)))
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_ssh_without_a_real_terminal_is_a_toast(tmp_path: Path) -> None:
    """:ssh where the terminal cannot be handed over (headless) says so."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"ssh db1", "enter")
        await until(pilot, lambda: any("cannot be handed over" in t for t in toasts(app)))
