"""``squ agents add|list|remove``: the inventory of agents this console connects to."""

from __future__ import annotations

import argparse
import json

from console.config import AgentEntry, config_dir, load_inventory, save_inventory


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="list, add or remove agents in the inventory")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    add = verbs.add_parser("add", help="add an agent (its certificate is pinned on first use)")
    add.add_argument("name")
    add.add_argument("url", help="wss://host:port (ws:// only on loopback)")
    add.add_argument("--fingerprint", default="", help="pin now (SHA256:... from squ-agentd init)")
    add.add_argument("--label", action="append", default=[], metavar="K=V")
    rm = verbs.add_parser("remove", help="remove an agent from the inventory")
    rm.add_argument("name")
    ls = verbs.add_parser("list", help="list agents")
    ls.add_argument("--json", action="store_true")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"squ agents add: --label {pair!r} must look like key=value")
        labels[key] = value
    return labels


def run(args: argparse.Namespace) -> int:
    directory = config_dir(args.config_dir)
    inventory = load_inventory(directory)
    if args.verb == "add":
        entry = AgentEntry(
            name=args.name, url=args.url, fingerprint=args.fingerprint, labels=_labels(args.label)
        )
        save_inventory(inventory.with_agent(entry))
        print(f"added {args.name} ({args.url}) to {inventory.path}")
        return 0
    if args.verb == "remove":
        save_inventory(inventory.without_agent(args.name))
        print(f"removed {args.name} from {inventory.path}")
        return 0
    rows = [
        {"name": a.name, "url": a.url, "fingerprint": a.fingerprint, "labels": a.labels}
        for a in inventory.agents
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no agents in {inventory.path}; add one with `squ agents add NAME URL`")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        pin = r["fingerprint"] or "(not pinned yet)"
        print(f"{r['name']:<{width}}  {r['url']}  {pin}")
    return 0
