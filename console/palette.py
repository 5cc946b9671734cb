"""Command palette (ctrl+p) entries: the views, every job's detail, editor and runs, themes.

Built from the mirror when searched (no network), so it lists what the
console knows, including jobs of agents that are down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.theme import THEMES
from shared.textsafe import inert

if TYPE_CHECKING:
    from console.app import SquApp

__all__ = ["SquCommands"]


class SquCommands(Provider):
    def _entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        from console.app import SquApp

        app = self.app
        assert isinstance(app, SquApp)
        squ: SquApp = app
        for view in ("servers", "jobs", "runs"):
            yield f"View: {view}", partial(squ.action_view, view), f"switch to {view}"
        for summary in squ.mirror.job_summaries():
            name = inert(summary.name)
            yield f"Job: {name}", partial(squ.run_command, f"job {summary.name}"), "detail"
            yield f"Edit: {name}", partial(squ.run_command, f"edit {summary.name}"), "editor"
            yield (
                f"Runs of: {name}",
                partial(squ.run_command, f"runs job={summary.name}"),
                "history",
            )
        for theme in THEMES:
            yield f"Theme: {theme}", partial(squ.run_command, f"theme {theme}"), "colours"

    async def discover(self) -> Hits:
        for text, command, help_text in self._entries():
            if text.startswith("View:"):
                yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, command, help_text in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_text)
