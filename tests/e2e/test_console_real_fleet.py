"""The TUI driven with Pilot over two real agents (db1, db2) and the real network fleet.

One module-wide pair of agents (``squ-agentd serve`` on 127.0.0.1, the operator's
real key); each test opens its own app and mirror and uses its own jobs, so the
tests do not interfere. Issue 4's "done when": filter runs, edit a job with a bad
cron, the Runs verbs on a real running execution, suspend/resume from Jobs.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, SelectionList

from console.fleet.mirror import Mirror, RunFilter
from console.screens import audit as audit_screen
from console.screens.approvals import ApprovalsScreen
from console.screens.confirm import ConfirmDialog
from console.screens.job_editor import JobEditorScreen
from console.screens.jobs import JobsScreen
from console.screens.logs import LogScreen
from console.screens.prompt import Prompt
from console.screens.runs import RunsScreen
from console.screens.servers import ServerDetailScreen, ServersScreen
from console.widgets.log_view import LogView
from console.widgets.run_list import RunList
from shared.models import JobRecord
from shared.protocol.messages import JobName
from tests.e2e.agentkit import wait_for
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.consolekit import all_up, open_app, static_text, table_rows, toasts, until
from tests.e2e.wirekit import Wire

JOBS = """\
[job.ok-job]
command = "echo fine"

[job.bad-job]
command = "echo boom >&2; exit 3"

[job.edit-me]
command = "true"
cron = "0 4 * * *"
targets = ["db1"]

[job.ticker]
command = "for i in $(seq 1 200); do echo line $i; sleep 0.2; done"
targets = ["db1"]

[job.gated]
command = "echo gated"
approval = "manual"
targets = ["db2"]

[job.pausable]
command = "true"
cron = "*/5 * * * *"
targets = ["db2"]
"""


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """db1 and db2, with JOBS applied and one run each of ok-job and bad-job on both."""
    _skip_if_missing()
    kit = Wire(tmp_path_factory.mktemp("console-real"))
    try:
        db1 = kit.agent("db1")
        kit.agent("db2")
        db1.write_jobs("filed.toml", '[job.filed]\ncommand = "true"\ncron = "0 3 * * *"\n')
        db1.hup()
        path = kit.tmp / "jobs.toml"
        path.write_text(textwrap.dedent(JOBS))
        applied = kit.squ("apply", str(path))
        assert applied.returncode == 0, applied.stderr
        for job in ("ok-job", "bad-job"):
            kit.squ("run", job, "--wait", "--quiet")
        for name in ("db1", "db2"):
            proc = kit.agents[name]
            wait_for(
                lambda proc=proc: len([e for e in proc.executions() if e.status.is_final]) >= 2,
                what="the seed runs to finish",
            )
        yield kit
    finally:
        kit.cleanup()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    opened = Mirror.open(tmp_path / "mirror.db")
    try:
        yield opened
    finally:
        opened.close()


async def command(pilot: Pilot[None], text: str) -> None:
    """Type ``:TEXT`` and enter, as the operator does."""
    await pilot.press("colon", *text, "enter")


def runs_shown(run_list: RunList) -> list[tuple[str, str, str]]:
    """(job, agent, status) of every row the Runs list holds under its filters."""
    rows = []
    for index in range(run_list.total):
        run = run_list.row(index)
        assert run is not None
        rows.append((run.execution.job, run.agent, str(run.execution.status)))
    return rows


async def test_filter_runs_synced_from_two_agents(wire: Wire, mirror: Mirror) -> None:
    """/regex and :runs job= status= filter the history mirrored from both agents."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        synced = RunFilter(job="bad-job")
        await until(pilot, lambda: mirror.count_runs(synced) >= 2, what="bad-job's runs synced")
        await until(
            pilot,
            lambda: mirror.count_runs(RunFilter(job="ok-job")) >= 2,
            what="ok-job's runs synced",
        )
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_list = app.screen.query_one(RunList)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press(*"bad-j", "enter")
        await until(pilot, lambda: run_list.filters.text == "bad-j")
        await until(pilot, lambda: run_list.total >= 2, what="the regex applied")
        shown = runs_shown(run_list)
        assert {job for job, _, _ in shown} == {"bad-job"}
        assert {agent for _, agent, _ in shown} == {"db1", "db2"}
        assert "/bad-j" in static_text(app, "#runs-filter")

        await command(pilot, "runs job=ok-job status=failed")
        await until(pilot, lambda: run_list.filters.job == "ok-job" and run_list.total == 0)
        await command(pilot, "runs job=bad-job status=failed")
        await until(pilot, lambda: run_list.filters.job == "bad-job" and run_list.total >= 2)
        assert {(j, a, s) for j, a, s in runs_shown(run_list)} == {
            ("bad-job", "db1", "failed"),
            ("bad-job", "db2", "failed"),
        }
        await command(pilot, "runs job=bad-job status=failed @db2")
        await until(pilot, lambda: run_list.filters.agent == "db2")
        await until(pilot, lambda: runs_shown(run_list) == [("bad-job", "db2", "failed")])


async def test_editor_refuses_a_bad_cron_then_saves_a_good_one(wire: Wire, mirror: Mirror) -> None:
    """A bad cron names the field and pushes nothing; a good edit reaches the agent's jobs.get."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        await until(pilot, lambda: mirror.jobs(name="edit-me"), what="edit-me mirrored")

        async def on_agent() -> JobRecord:
            record: JobRecord = await app.fleet.call("db1", "jobs.get", JobName(name="edit-me"))  # type: ignore[attr-defined]
            return record

        before = await on_agent()
        await command(pilot, "edit edit-me")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        editor = app.screen
        assert isinstance(editor, JobEditorScreen)
        cron = editor.query_one("#f-cron", Input)
        cron.focus()
        await pilot.press("ctrl+a", "ctrl+k", *"61 * * * *")
        await until(pilot, lambda: static_text(app, "#editor-error").startswith("cron:"))
        assert cron.has_class("-invalid")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("cron" in t for t in toasts(app)), what="the error toast")
        assert static_text(app, "#save-results") == ""
        assert (await on_agent()).version == before.version

        await pilot.press("ctrl+a", "ctrl+k", *"15 5 * * *")
        await until(pilot, lambda: static_text(app, "#editor-error") == "valid")
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: "db1: saved" in static_text(app, "#save-results"), what="saved on db1"
        )
        after = await on_agent()
        assert after.version == before.version + 1
        assert after.job.cron == "15 5 * * *"
        assert f"version {after.version}" in static_text(app, "#save-results")
        # The agent's push brings the new version into the mirror as well.
        await until(
            pilot,
            lambda: mirror.jobs(name="edit-me")[0].record.version == after.version,
            what="the new version mirrored",
        )


async def test_editing_a_jobs_d_job_opens_read_only_naming_the_file(
    wire: Wire, mirror: Mirror
) -> None:
    """A job from db1's jobs.d opens read-only, names the file, and ctrl+s saves nothing."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        await until(pilot, lambda: mirror.jobs(name="filed"), what="filed mirrored")
        await command(pilot, "edit filed")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        shown = static_text(app, "#editor-readonly")
        assert "jobs.d/filed.toml on db1" in shown
        assert app.screen.query_one("#f-cron", Input).disabled
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("filed.toml" in t for t in toasts(app)))
        assert mirror.jobs(name="filed")[0].record.version == 1


async def test_runs_verbs_on_a_real_running_execution(wire: Wire, mirror: Mirror) -> None:
    """l follows the live log; K (focus on Cancel first) ends it cancelled; R starts a new one."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        exec_id = await app.fleet.trigger("ticker", "db1", {})

        def status(eid: str) -> str:
            run = mirror.get_run("db1", eid)
            return str(run.execution.status) if run else ""

        await until(pilot, lambda: status(exec_id) == "running", what="ticker running")
        await command(pilot, "runs job=ticker")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        run_list = app.screen.query_one(RunList)
        await until(pilot, lambda: run_list.selected and run_list.selected.execution.id == exec_id)

        # l: the live log, new lines arriving while we watch.
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: "line 2" in view.shown_text(), what="the first lines")
        seen = len(view.shown_text())
        await until(pilot, lambda: len(view.shown_text()) >= seen + 3, what="more lines, live")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))

        # K: the confirmation starts on Cancel; Cancel leaves it running.
        await pilot.press("K")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert status(exec_id) == "running"
        await pilot.press("K")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm")
        await until(pilot, lambda: status(exec_id) == "cancelled", what="ticker cancelled")

        # R: a new execution of the same job.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.click("#confirm")

        def others() -> list[str]:
            runs = mirror.page_runs(RunFilter(job="ticker", agent="db1"), None, 10)
            return [r.execution.id for r in runs if r.execution.id != exec_id]

        await until(pilot, others, what="the re-run in the mirror")
        again = others()[0]
        assert again > exec_id
        await until(pilot, lambda: status(again) in ("running", "queued", "pending"))
        await app.fleet.cancel("db1", again)
        await until(pilot, lambda: status(again) == "cancelled", what="the re-run cancelled")


async def test_suspend_and_resume_from_jobs_reach_the_agent(wire: Wire, mirror: Mirror) -> None:
    """s on a job disables it on its agent (row shows off/suspended); s again enables it."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        await until(pilot, lambda: mirror.jobs(name="pausable"), what="pausable mirrored")
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await pilot.press("slash", *"^pausable", "enter")
        await until(pilot, lambda: list(jobs.summaries) == ["pausable"])

        async def enabled_on_agent() -> bool:
            record = await app.fleet.call("db2", "jobs.get", JobName(name="pausable"))  # type: ignore[attr-defined]
            return bool(record.job.enabled)

        await pilot.press("s")
        await until(
            pilot,
            lambda: " off " in table_rows(app, "#jobs").get("pausable", ""),
            what="the row shows off",
        )
        assert "suspended" in table_rows(app, "#jobs")["pausable"]
        assert not await enabled_on_agent()
        await pilot.press("s")
        await until(
            pilot,
            lambda: " on " in table_rows(app, "#jobs").get("pausable", ""),
            what="the row shows on",
        )
        assert await enabled_on_agent()


async def test_suspend_of_a_job_on_two_agents_is_confirmed_then_reaches_both(
    wire: Wire, mirror: Mirror
) -> None:
    """s on a job on db1 and db2 asks first (focus on Cancel); confirmed, both agents disable it."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        await until(pilot, lambda: len(mirror.jobs(name="ok-job")) == 2, what="ok-job mirrored")
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await pilot.press("slash", *"^ok-", "enter")
        await until(pilot, lambda: list(jobs.summaries) == ["ok-job"])

        async def enabled_on(agent: str) -> bool:
            record = await app.fleet.call(agent, "jobs.get", JobName(name="ok-job"))  # type: ignore[attr-defined]
            return bool(record.job.enabled)

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.focused is not None and app.focused.id == "cancel"
        assert "--on db1 --on db2" in str(app.screen.query_one(".dialog-command").render())
        await pilot.click("#confirm")
        await until(
            pilot,
            lambda: all(not s.record.job.enabled for s in mirror.jobs(name="ok-job")),
            what="disabled on both, mirrored",
        )
        assert not await enabled_on("db1")
        assert not await enabled_on("db2")
        await until(pilot, lambda: " off " in table_rows(app, "#jobs").get("ok-job", ""))

        # The dialog's command is the real CLI's: run verbatim, it resumes on both.
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        shown = str(app.screen.query_one(".dialog-command").render())
        assert shown == "$ squ resume ok-job --on db1 --on db2"
        await pilot.press("enter")  # Cancel
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        argv = shown.removeprefix("$ squ ").split()
        done = await asyncio.to_thread(wire.squ_process, *argv)
        assert done.returncode == 0, done.stderr
        assert "db1: ok-job resumed" in done.stdout and "db2: ok-job resumed" in done.stdout
        await until(
            pilot,
            lambda: all(s.record.job.enabled for s in mirror.jobs(name="ok-job")),
            what="enabled again on both, mirrored",
        )
        await until(pilot, lambda: " on " in table_rows(app, "#jobs").get("ok-job", ""))


def test_suspend_of_an_unknown_job_names_where_it_looked(wire: Wire) -> None:
    """squ suspend of a job no agent has is an error naming the job and the agents."""
    done = wire.squ("suspend", "no-such-job")
    assert done.returncode == 2
    assert "no job named 'no-such-job' on db1, db2" in done.stderr


async def test_approvals_view_lists_a_real_request_and_shows_the_agents_refusals(
    wire: Wire, mirror: Mirror
) -> None:
    """5 lists db2's pending request; approving or rejecting one's own run is refused in a toast."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        exec_id = await app.fleet.trigger("gated", "db2", {})
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, ApprovalsScreen))
        screen = app.screen
        assert isinstance(screen, ApprovalsScreen)

        def listed() -> bool:
            return any(i.intent.execution_id == exec_id for _, i in screen.requests)

        def toast(title: str) -> str:
            return next((n.message for n in app._notifications if n.title == title), "")

        await until(pilot, listed, what="the pending request listed")
        await until(pilot, lambda: screen.selected() is not None)
        assert screen.selected()[1].intent.execution_id == exec_id  # type: ignore[index]
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.click("#confirm")
        await until(pilot, lambda: toast("approve gated on db2 failed"), what="approve refused")
        assert "cannot also approve it" in toast("approve gated on db2 failed")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Prompt))
        await pilot.press(*"not now", "enter")
        await until(pilot, lambda: toast("reject gated on db2 failed"), what="reject refused")
        assert "cancel it instead" in toast("reject gated on db2 failed")
        assert listed()
        await app.fleet.cancel("db2", exec_id)
        await until(pilot, lambda: not listed(), what="the request gone once cancelled")


async def test_new_job_from_the_editor_lands_on_the_agent_and_its_server_view(
    wire: Wire, mirror: Mirror
) -> None:
    """n, a name and a command, saved to db2: the agent has it; Servers > db2 lists it."""
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, JobEditorScreen))
        editor = app.screen
        assert isinstance(editor, JobEditorScreen)
        await pilot.press(*"fresh-one")
        editor.query_one("#f-command", Input).focus()
        await pilot.press(*"echo new")
        await until(pilot, lambda: static_text(app, "#editor-error") == "valid")
        editor.query_one("#save-to", SelectionList).select("db2")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "db2: saved, version 1" in static_text(app, "#save-results"))
        record = await app.fleet.call("db2", "jobs.get", JobName(name="fresh-one"))  # type: ignore[attr-defined]
        assert record.job.command == "echo new" and record.source == "console"

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, ServersScreen))
        await until(pilot, lambda: "db2" in table_rows(app, "#servers"))
        app.screen.query_one("#servers", DataTable).move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        await until(pilot, lambda: "fresh-one" in table_rows(app, "#server-jobs"))
        assert "console" in table_rows(app, "#server-jobs")["fresh-one"]
        assert "db1" not in table_rows(app, "#server-jobs").get("fresh-one", "")


async def test_audit_view_shows_each_agents_newest_entries_chain_verified(
    wire: Wire, mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: 6 showed the oldest page of a long log; it shows the newest, still verified."""
    monkeypatch.setattr(audit_screen, "PAGE", 3)  # the agents' logs are longer than a page
    app = open_app(wire, mirror)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_up(pilot, app)
        heads = {
            agent: (await app.fleet.audit_since(agent, 0, 1)).head.seq  # type: ignore[attr-defined]
            for agent in ("db1", "db2")
        }
        assert min(heads.values()) > 3
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, audit_screen.AuditScreen))
        screen = app.screen
        assert isinstance(screen, audit_screen.AuditScreen)
        await until(pilot, lambda: len(screen.entries) == 6, what="three entries per agent")
        for agent, head in heads.items():
            seqs = sorted(e.seq for a, e in screen.entries if a == agent)
            assert seqs[-1] >= head and seqs == list(range(seqs[0], seqs[0] + 3))
        assert "hash chains verified" in static_text(app, "#audit-status")
