"""Benchmark of the audit log and approval decisions on a real store (not part of the suite).

    .venv/bin/python bench/bench_audit.py [--appends 2000] [--verify 100000] [--approvals 200]

Prints a Markdown table: audit appends/s through ``Store.call`` at
synchronous=FULL one after another and concurrently (the store group-commits),
``verify`` over a long log, and one approval decision (request + signed
approve: SSHSIG verify, nonce, request, execution and audit in one transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentd import audit
from agentd.approvals import ApprovalDesk
from agentd.store import Store, jobs
from shared.approvals import intent_bytes
from shared.identity import APPROVAL_NAMESPACE, parse_authorized_operators, public_key_line, sign
from shared.models import Job


async def appends(path: Path, n: int, concurrent: bool) -> float:
    store = await Store.open(path)
    try:

        def one(i: int) -> object:
            return store.call(
                audit.append, at=time.time(), actor="alice", origin="bench", action="run",
                target=f"exec{i}", detail={"job": "backup"},
            )  # fmt: skip

        started = time.perf_counter()
        if concurrent:
            await asyncio.gather(*(one(i) for i in range(n)))
        else:
            for i in range(n):
                await one(i)
        return n / (time.perf_counter() - started)
    finally:
        await store.close()


def verify_rate(path: Path, n: int) -> tuple[float, float]:
    store = Store.open_sync(path, synchronous="OFF")  # type: ignore[arg-type]

    def fill(db: object) -> None:
        with db.atomic():  # type: ignore[attr-defined]
            for i in range(n):
                audit.append(db, at=1.8e9 + i, actor="alice", origin="bench", action="run",
                             target=f"exec{i}")  # type: ignore[arg-type]  # fmt: skip

    store.call_sync(fill)
    started = time.perf_counter()
    report = store.call_sync(audit.verify)
    took = time.perf_counter() - started
    store.close_sync()
    assert report.ok and report.checked == n, report
    return took * 1000, n / took


async def approval_ms(path: Path, n: int) -> float:
    alice, bob = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    operators = parse_authorized_operators(
        f"operator alice {public_key_line(alice)}\napprover bob {public_key_line(bob)}\n", "ops"
    )
    store = await Store.open(path)
    try:
        record = await store.call(
            jobs.put_job, Job(name="deploy", command="true"), source="bench", now=time.time(),
            by="alice", expected_version=None,
        )  # fmt: skip
        desk = ApprovalDesk(store, agent_name="db1", operators=lambda: operators)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            info = await desk.request(
                record, params={}, requester="alice", origin="bench", expires_in_s=60
            )
            sig = sign(bob, APPROVAL_NAMESPACE, intent_bytes(info.intent))
            await desk.approve(info.intent, sig, by="bob", origin="bench")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--verify", type=int, default=100_000)
    parser.add_argument("--approvals", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_by_one = asyncio.run(appends(root / "a.db", args.appends, concurrent=False))
        together = asyncio.run(appends(root / "b.db", args.appends, concurrent=True))
        verify_ms, per_s = verify_rate(root / "c.db", args.verify)
        decide_ms = asyncio.run(approval_ms(root / "d.db", args.approvals))
    print("| measure | value |")
    print("|---|---|")
    print(f"| audit append, one after another (FULL) | {one_by_one:,.0f} entries/s |")
    print(f"| audit append, {args.appends} concurrent (group commit) | {together:,.0f} entries/s |")
    print(f"| verify {args.verify:,} entries | {verify_ms:,.0f} ms ({per_s:,.0f} entries/s) |")
    print(f"| request + signed approve, median of {args.approvals} | {decide_ms:.2f} ms |")


if __name__ == "__main__":
    main()
