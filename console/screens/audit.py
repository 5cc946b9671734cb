"""Audit (key 6): the agents' audit logs, newest first, with a filter; chain checked on arrival.

Entries are asked over the wire (``audit.since``) from every usable agent in
a worker; each agent's page is checked with ``shared.audit.verify_chain``
against the head it came with, and a broken chain is shown in red above the
table. ``/`` filters rows by a regex over who, what, target and origin
(``!`` inverts).
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from console.bindings import bindings
from console.intent import when_text
from console.screens.base import SquScreen
from shared.audit import AuditBatch, AuditEntry, Head, verify_chain

__all__ = ["AuditScreen"]

# Entries asked per agent per view (the newest are shown; older: squ-agentd audit show).
PAGE = 1000


class AuditScreen(SquScreen):
    crumbs: ClassVar[list[str]] = ["audit"]
    BINDINGS: ClassVar[list[BindingType]] = bindings("view.filter", "approvals.reload")

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, AuditEntry]] = []
        self.broken: list[str] = []
        self.pattern: re.Pattern[str] | None = None
        self.invert = False

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(id="audit-status", markup=False)
        table: DataTable[str | Text] = DataTable(id="audit", cursor_type="row")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#audit", DataTable)
        for label, width in (
            ("Agent", 10), ("Seq", 5), ("At", 23), ("Who", 12), ("What", 20), ("Target", 28),
            ("From", 22),
        ):  # fmt: skip
            table.add_column(label, width=width, key=label)
        self.reload()

    def refresh_data(self) -> None:
        super().refresh_data()
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    @work(exclusive=True, group="audit-load", exit_on_error=False)
    async def reload(self) -> None:
        entries: list[tuple[str, AuditEntry]] = []
        broken: list[str] = []
        for state in self.squ.agents():
            if not state.link.is_usable:
                continue
            newest = await self.squ.call_agent(f"audit on {state.name}", self.newest(state.name))
            if newest is None:
                continue
            batch, start = newest
            shown = batch.entries[1:] if start is not None else batch.entries
            report = verify_chain(shown, head=None if batch.more else batch.head, start=start)
            if not report.ok:
                broken.append(f"{state.name}: {report.why}")
            entries += [(state.name, e) for e in shown]
        entries.sort(key=lambda pair: pair[1].at, reverse=True)
        self.show(entries, broken)

    async def newest(self, agent: str) -> tuple[AuditBatch, Head | None]:
        """The newest ``PAGE`` entries of ``agent``'s log, and the head they chain from.

        ``audit.since`` pages forward from a seq, so the head comes first (one entry
        asked); a longer log is then read from one entry before its last ``PAGE``:
        that entry (``start``, not shown) anchors the chain check of the tail.
        """
        fleet = self.squ.fleet
        head = (await fleet.audit_since(agent, 0, 1)).head
        if head.seq <= PAGE:
            return await fleet.audit_since(agent, 0, PAGE), None
        batch = await fleet.audit_since(agent, head.seq - PAGE - 1, PAGE + 1)
        if not batch.entries:
            return batch, None
        anchor = batch.entries[0]
        return batch, Head(seq=anchor.seq, hash=anchor.hash)

    def show(self, entries: list[tuple[str, AuditEntry]], broken: list[str]) -> None:
        self.entries, self.broken = entries, broken
        status = self.query_one("#audit-status", Static)
        if broken:
            status.update(Text("audit chain BROKEN: " + "; ".join(broken), style="bold red"))
        else:
            shown = "" if self.pattern is None else f" · filter /{self.pattern.pattern}"
            status.update(Text(f"{len(entries)} entries, hash chains verified{shown}"))
        table = self.query_one("#audit", DataTable)
        table.clear()
        for agent, e in entries:
            if not self.matches(e):
                continue
            table.add_row(
                agent,
                str(e.seq),
                when_text(e.at, self.squ.tz),
                e.actor,
                e.action,
                e.target,
                e.origin,
                key=f"{agent}:{e.seq}",
            )

    def matches(self, e: AuditEntry) -> bool:
        if self.pattern is None:
            return True
        found = bool(self.pattern.search(f"{e.actor} {e.action} {e.target} {e.origin}"))
        return found != self.invert

    def action_filter(self) -> None:
        from console.screens.prompt import Prompt

        def done(text: str | None) -> None:
            if text is None:
                return
            invert = text.startswith("!")
            body = text[1:] if invert else text
            try:
                self.pattern = re.compile(body, re.IGNORECASE) if body else None
            except re.error as exc:
                self.notify(f"/{body}: {exc}", title="filter", severity="error")
                return
            self.invert = invert
            self.show(self.entries, self.broken)

        self.app.push_screen(Prompt("/", placeholder="regex over who/what/target, !inverts"), done)
