"""Bindings: one table with ids, remappable from tui.toml, documented in docs/console.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.bindings import KEYS, BadKeymap, bindings, keymap_markdown, load_keymap
from console.theme import TuiConfigError, load_tui_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "console.md"


def test_every_binding_has_its_id() -> None:
    """bindings() gives each Textual binding the id of its table row."""
    made = bindings(*KEYS)
    assert [b.id for b in made] == list(KEYS)


def test_keymap_loads_and_normalises(tmp_path: Path) -> None:
    """A [keys] table maps ids to keys, spaces after commas removed."""
    path = tmp_path / "tui.toml"
    path.write_text('[keys]\n"jobs.trigger" = "T, ctrl+t"\n')
    assert load_keymap(path) == {"jobs.trigger": "T,ctrl+t"}


def test_unknown_binding_id_is_named_with_a_hint(tmp_path: Path) -> None:
    """A typo in an id names the file, the id and the ids it may have meant."""
    path = tmp_path / "tui.toml"
    path.write_text('[keys]\n"job.trigger" = "T"\n')
    with pytest.raises(BadKeymap, match=r"'job.trigger'.*did you mean jobs.trigger"):
        load_keymap(path)


def test_bad_key_name_is_refused(tmp_path: Path) -> None:
    """A key with characters no key name has is refused, naming it."""
    path = tmp_path / "tui.toml"
    path.write_text('[keys]\n"app.quit" = "ctrl q"\n')
    with pytest.raises(BadKeymap, match="'ctrl q' is not a key name"):
        load_keymap(path)


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    """No tui.toml: default keys and the default theme."""
    assert load_keymap(tmp_path / "none.toml") == {}
    assert load_tui_config(tmp_path / "none.toml").theme == "ansi-dark"


def test_unknown_theme_is_named(tmp_path: Path) -> None:
    """A theme that does not exist is refused with the list of those that do."""
    path = tmp_path / "tui.toml"
    path.write_text('theme = "neon"\n')
    with pytest.raises(TuiConfigError, match="'neon' is not one of squ-dark"):
        load_tui_config(path)


def test_docs_list_every_binding() -> None:
    """docs/console.md carries the bindings table exactly as the code has it."""
    assert keymap_markdown() in DOCS.read_text()
