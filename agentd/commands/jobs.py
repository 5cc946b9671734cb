"""``squ-agentd jobs``: the agent's jobs, their schedule, source and next run.

Asks the running agent (which knows the next run); when no agent runs, reads
the store directly (WAL lets a reader in beside a writer) without next runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from agentd import control
from agentd.commands._common import add_data_dir, data_dir_of, fmt_time, print_json, print_table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("jobs", help="list the agent's jobs")
    add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the jobs as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    try:
        jobs: list[dict[str, Any]] = control.request(control.socket_path(data_dir), "jobs")
    except control.DaemonNotRunning:
        jobs = _from_store(data_dir)
    if args.json:
        print_json(jobs)
        return 0
    rows = [
        [
            j["name"],
            j["schedule"],
            "yes" if j["enabled"] else "no",
            fmt_time(j.get("next_run")),
            j["concurrency"],
            str(j["retry_count"]),
            j["source"],
        ]
        for j in jobs
    ]
    print_table(["NAME", "SCHEDULE", "ENABLED", "NEXT RUN", "OVERLAP", "RETRIES", "SOURCE"], rows)
    return 0


def _from_store(data_dir: Any) -> list[dict[str, Any]]:
    from agentd.daemon import db_path, job_dict
    from agentd.store import jobs as jobs_sql
    from agentd.store import open_readonly

    db = open_readonly(db_path(data_dir))
    try:
        return [job_dict(rec, None) for rec in jobs_sql.list_jobs(db)]
    finally:
        db.close()
