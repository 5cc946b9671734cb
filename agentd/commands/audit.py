"""``squ-agentd audit``: read and check the agent's hash-chained audit log (docs/audit.md).

``audit verify`` walks the whole chain in the store against its head and says
which entry was edited, dropped or reordered (exit 1), or how many entries it
checked (exit 0). ``audit show`` lists entries. Both read the store read-only,
so they work beside a running agent.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

import msgspec

from agentd import audit
from agentd.commands._common import (
    add_data_dir,
    data_dir_of,
    fmt_time,
    print_json,
    print_table,
)
from shared.errors import SquError


class AuditUnreadable(SquError):
    code = "audit_unreadable"

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: the audit log cannot be read: {why}", where=where, why=why)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("audit", help="show or verify the hash-chained audit log")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser("verify", help="check the hash chain; exit 1 naming the bad entry")
    add_data_dir(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run_verify)
    show = verbs.add_parser("show", help="list audit entries, oldest first")
    add_data_dir(show)
    show.add_argument("--since", type=int, default=0, help="entries after this seq (default 0)")
    show.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show.add_argument("--actor", help="only entries by this operator")
    show.add_argument("--action", help="only this action (job.put, approval.approved, ...)")
    show.add_argument("--target", help="only entries about this job, execution or request")
    show.add_argument("--json", action="store_true", help="print the entries as JSON")
    show.set_defaults(func=run_show)


def run_verify(args: argparse.Namespace) -> int:
    report = _read(args, audit.verify)
    if args.json:
        print_json(msgspec.to_builtins(report))
    elif report.ok:
        print(f"audit log intact: {report.checked} entries, hash chain and head agree")
    else:
        print(f"audit log TAMPERED at entry {report.bad_seq}: {report.why}")
        print(f"({report.checked} entries before it verified)")
    return 0 if report.ok else 1


def run_show(args: argparse.Namespace) -> int:
    entries = _read(
        args,
        lambda db: audit.entries_since(
            db, args.since, args.limit, actor=args.actor, action=args.action, target=args.target
        ),
    )
    if args.json:
        print_json([msgspec.to_builtins(e) for e in entries])
        return 0
    rows = [[str(e.seq), fmt_time(e.at), e.actor, e.origin, e.action, e.target] for e in entries]
    print_table(["SEQ", "AT", "WHO", "FROM", "WHAT", "TARGET"], rows)
    return 0


def _read(args: argparse.Namespace, fn: Any) -> Any:
    from agentd.daemon import db_path
    from agentd.store import open_readonly

    path = db_path(data_dir_of(args))
    db = open_readonly(path)
    try:
        if "audit" not in db.table_names():
            raise AuditUnreadable(str(path), "no audit table (start the agent once to migrate)")
        return fn(db)
    except sqlite3.DatabaseError as exc:
        # A damaged file is a finding, said in words, not a traceback.
        raise AuditUnreadable(str(path), str(exc)) from None
    finally:
        db.close()
