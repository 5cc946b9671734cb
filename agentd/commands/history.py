"""``squ-agentd history``: past and current executions, newest first.

Filters: ``--job``, ``--status``, ``--since 24h`` (or 30m, 7d, an ISO time),
``--limit``. Asks the running agent; when none runs, reads the store directly.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from agentd import control
from agentd.commands._common import (
    add_data_dir,
    data_dir_of,
    fmt_time,
    parse_since,
    print_json,
    print_table,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("history", help="list executions, newest first")
    add_data_dir(parser)
    parser.add_argument("--job", help="only this job")
    parser.add_argument("--status", help="only this status (success, failed, timeout, ...)")
    parser.add_argument("--since", help="only executions created since: 24h, 30m, 7d, ISO time")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--json", action="store_true", help="print the executions as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    params: dict[str, Any] = {"job": args.job, "status": args.status, "limit": args.limit}
    if args.since:
        params["since"] = parse_since(args.since, now=time.time())
    try:
        rows: list[dict[str, Any]] = control.request(
            control.socket_path(data_dir), "history", params
        )
    except control.DaemonNotRunning:
        rows = _from_store(data_dir, params)
    if args.json:
        print_json(rows)
        return 0
    table = [
        [
            r["id"],
            r["job"],
            r["status"],
            r["trigger"] + (f"#{r['retry_index']}" if r["retry_index"] else ""),
            fmt_time(r.get("started_at") or r.get("scheduled_for")),
            "-" if r.get("duration_ms") is None else f"{r['duration_ms'] / 1000:.1f}s",
            "-" if r.get("exit_code") is None else str(r["exit_code"]),
        ]
        for r in rows
    ]
    print_table(["EXECUTION", "JOB", "STATUS", "TRIGGER", "STARTED", "TOOK", "EXIT"], table)
    return 0


def _from_store(data_dir: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    from agentd.daemon import db_path, execution_dict, history_filters
    from agentd.store import executions as ex_sql
    from agentd.store import open_readonly

    db = open_readonly(db_path(data_dir))
    try:
        return [execution_dict(r) for r in ex_sql.query_executions(db, **history_filters(params))]
    finally:
        db.close()
