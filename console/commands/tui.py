"""``squ tui`` (also plain ``squ``): the TUI on the fleet in the operator's inventory.

One link per agent runs inside the app (``Fleet.run`` in a Textual worker), so
a slow or dead agent never blocks the screen; history is read from the mirror
beside fleet.toml (``CONFIG/mirror.db``) and kept in step by the links.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from console.commands._common import NoAgents, context, mirror_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tui", help="open the console (the default with no command)")
    p.set_defaults(func=run)


def open_tui(inventory_dir: Path, mirror_file: Path) -> int:
    """Run the TUI for the inventory in ``inventory_dir`` until the operator quits."""
    from console.app import run_tui
    from console.config import load_inventory
    from console.fleet.fleet import Fleet
    from console.fleet.mirror import Mirror
    from console.keys import load_operator_key
    from console.theme import load_tui_config

    inventory = load_inventory(inventory_dir)
    key = load_operator_key(inventory, inventory_dir)
    config = load_tui_config(inventory_dir / "tui.toml")
    mirror_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The links write through their own connection; the app reads through run_tui's
    # (WAL: readers never wait for the writer).
    mirror = Mirror.open(mirror_file)
    try:
        fleet = Fleet(inventory, key=key, mirror=mirror, client="squ tui")
        return run_tui(mirror_file, fleet, config=config)
    finally:
        mirror.close()


def run(args: argparse.Namespace) -> int:
    ctx = context(args)
    if not ctx.inventory.agents:
        raise NoAgents(ctx.inventory.path)
    return open_tui(ctx.config_dir, mirror_path(ctx))
