"""Approvals (key 5): pending requests across the fleet, the intent in full; sign or reject.

The table lists every pending request of every agent that is up (asked over
the wire in a worker, re-asked when the fleet reports a change and on ``g``).
The pane below shows the highlighted request's run intent exactly as it will
be signed: command, targets, parameters and the diff from the last approved
definition (console/intent.py). ``a`` signs it with the operator's key after a
confirmation that names the agent and the equivalent ``squ approve``; ``x``
asks for a comment and rejects. The agent decides: a refusal comes back as a
toast with its reason.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from console.bindings import bindings
from console.intent import intent_text, params_text, when_text
from console.screens.base import SquScreen
from shared.approvals import ApprovalInfo, ApprovalState

__all__ = ["ApprovalsScreen"]


class ApprovalsScreen(SquScreen):
    crumbs: ClassVar[list[str]] = ["approvals"]
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "approvals.approve", "approvals.reject", "approvals.reload"
    )

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, ApprovalInfo]] = []

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        table: DataTable[str | Text] = DataTable(id="approvals", cursor_type="row")
        yield table
        # A long diff scrolls instead of running under the footer.
        with VerticalScroll(id="intent-scroll"):
            yield Static(id="intent", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#approvals", DataTable)
        for label, width in (
            ("Agent", 10), ("Job", 16), ("Requester", 10), ("Expires", 23), ("Params", 24),
        ):  # fmt: skip
            table.add_column(label, width=width, key=label)
        self.reload()

    def refresh_data(self) -> None:
        super().refresh_data()
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    @work(exclusive=True, group="approvals-load", exit_on_error=False)
    async def reload(self) -> None:
        """Ask every usable agent for its pending requests, then redraw."""
        found: list[tuple[str, ApprovalInfo]] = []
        for state in self.squ.agents():
            if not state.link.is_usable:
                continue
            infos = await self.squ.call_agent(
                f"approvals on {state.name}",
                self.squ.fleet.list_approvals(state.name, ApprovalState.PENDING),
            )
            found += [(state.name, info) for info in infos or []]
        found.sort(key=lambda pair: pair[1].intent.request_id)
        self.show(found)

    def show(self, requests: list[tuple[str, ApprovalInfo]]) -> None:
        """Draw ``requests`` (agent, request), keeping the cursor on the same request."""
        table = self.query_one("#approvals", DataTable)
        keep = self.selected()
        self.requests = requests
        table.clear()
        for agent, info in requests:
            table.add_row(
                agent,
                info.intent.job,
                info.intent.requester,
                when_text(info.intent.expires_at, self.squ.tz),
                params_text(info.intent.params),
                key=f"{info.intent.request_id}@{agent}",
            )
        if keep is not None:
            for index, (agent, info) in enumerate(requests):
                if (agent, info.intent.request_id) == (keep[0], keep[1].intent.request_id):
                    table.move_cursor(row=index)
        self.show_intent()

    def selected(self) -> tuple[str, ApprovalInfo] | None:
        table = self.query_one("#approvals", DataTable)
        if not self.requests or table.cursor_row < 0 or table.cursor_row >= len(self.requests):
            return None
        return self.requests[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_intent()

    def show_intent(self) -> None:
        pane = self.query_one("#intent", Static)
        chosen = self.selected()
        if chosen is None:
            pane.update(Text("no pending approval requests on the agents that are up"))
            return
        pane.update(Text(intent_text(chosen[1], chosen[0], self.squ.tz)))

    def action_approve(self) -> None:
        from console.screens.confirm import ConfirmDialog

        chosen = self.selected()
        if chosen is None:
            return
        agent, info = chosen

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.approve(agent, info)

        title = f"Sign and approve {info.intent.job} for {info.intent.requester} on {agent}?"
        command = f"squ approve {info.intent.request_id}@{agent}"
        self.app.push_screen(ConfirmDialog(title, [agent], command, confirm_label="Approve"), done)

    @work(group="actions", exit_on_error=False)
    async def approve(self, agent: str, info: ApprovalInfo) -> None:
        done = await self.squ.call_agent(
            f"approve {info.intent.job} on {agent}", self.squ.fleet.approve(agent, info)
        )
        if done is not None:
            self.notify(
                f"{info.intent.job} approved on {agent}: {done.intent.execution_id} queued",
                title="approved",
            )
        self.reload()

    def action_reject(self) -> None:
        from console.screens.prompt import Prompt

        chosen = self.selected()
        if chosen is None:
            return
        agent, info = chosen

        def done(comment: str | None) -> None:
            if comment:
                self.reject(agent, info, comment)
            elif comment is not None:
                self.notify("a rejection needs a comment", severity="warning")

        self.app.push_screen(Prompt("reject, why:", placeholder="not during the freeze"), done)

    @work(group="actions", exit_on_error=False)
    async def reject(self, agent: str, info: ApprovalInfo, comment: str) -> None:
        done = await self.squ.call_agent(
            f"reject {info.intent.job} on {agent}",
            self.squ.fleet.reject(agent, info.intent.request_id, comment),
        )
        if done is not None:
            self.notify(f"{info.intent.job} rejected on {agent}", title="rejected")
        self.reload()
