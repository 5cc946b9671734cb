"""The execution status machine: every table entry, and an illegal step from every state."""

from __future__ import annotations

import pytest

from shared.enums import ExecutionStatus as S
from shared.errors import IllegalTransition
from shared.status import TRANSITIONS, Event, table_markdown, transition


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS), ids=lambda v: str(v))
def test_every_entry_is_a_legal_step(state: S, event: Event) -> None:
    """transition() follows the table for each entry."""
    assert transition(state, event) is TRANSITIONS[(state, event)]


@pytest.mark.parametrize("state", list(S))
def test_some_step_is_illegal_from_every_state(state: S) -> None:
    """From every state at least one event is refused with IllegalTransition naming both."""
    illegal = [e for e in Event if (state, e) not in TRANSITIONS]
    assert illegal, f"{state} accepts every event"
    with pytest.raises(IllegalTransition, match=f"cannot {illegal[0].value} an execution that is"):
        transition(state, illegal[0])


def test_final_states_have_no_way_out() -> None:
    """A finished execution never changes status again."""
    for state in S:
        if state.is_final:
            assert not [e for e in Event if (state, e) in TRANSITIONS]


def test_every_non_final_state_can_end() -> None:
    """Every live state has a path to a final one (no execution can get stuck by design)."""
    for state in S:
        if state.is_final:
            continue
        seen, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for (src, _), dst in TRANSITIONS.items():
                if src is current and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        assert any(s.is_final for s in seen), state


def test_docs_table_matches_code() -> None:
    """docs/agentd.md or docs/architecture.md carries the generated table, kept in step."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "status.md"
    assert table_markdown() in docs.read_text()
