"""Console side of the wire, end to end: history sync rate into the mirror, link round
trip, ``squ jobs`` in process and as a process.

Usage: ``python -m bench.wire_sync_cli [ROWS]``. A real agent subprocess seeded with
ROWS executions (default 20,000); the console's ``Fleet`` in this process. Figures go
to stdout; docs/fleet.md records them.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from console.config import load_inventory
from console.fleet.fleet import Fleet
from console.fleet.mirror import Mirror
from console.keys import load_operator_key
from shared.protocol.messages import Empty
from tests.e2e.agentkit import AgentProc
from tests.e2e.test_wire_sync import seed_history
from tests.e2e.wirekit import Wire


async def measure(wire: Wire, root: Path) -> None:
    inventory = load_inventory(wire.config)
    key = load_operator_key(inventory, wire.config)
    mirror = Mirror.open(root / "mirror.db")
    try:
        async with Fleet(inventory, key=key, subscribe=False) as fleet:
            await fleet.settle(20)
            link = fleet.link("db1")
            started = time.perf_counter()
            rows = await link.sync_history(mirror=mirror, batch=500)
            took = time.perf_counter() - started
            print(f"sync into an empty mirror: {rows} rows in {took:.2f} s = {rows / took:.0f}/s")
            started = time.perf_counter()
            await link.sync_history(mirror=mirror, batch=500)
            print(f"sync with nothing new: {(time.perf_counter() - started) * 1000:.1f} ms")
            laps = []
            for _ in range(50):
                started = time.perf_counter()
                await fleet.call("db1", "agent.info", Empty())
                laps.append(time.perf_counter() - started)
            laps.sort()
            print(f"agent.info round trip p50: {laps[len(laps) // 2] * 1000:.2f} ms")
    finally:
        mirror.close()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    root = Path(tempfile.mkdtemp(prefix="squ-wire-bench-"))
    wire = Wire(root)
    try:
        seed_history(AgentProc(root / "db1").data_dir, rows)
        wire.agent("db1")
        asyncio.run(measure(wire, root))
        started = time.perf_counter()
        wire.squ("jobs")
        print(f"squ jobs in process: {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        wire.squ_process("jobs")
        print(f"squ jobs as a process: {(time.perf_counter() - started) * 1000:.0f} ms")
    finally:
        wire.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
