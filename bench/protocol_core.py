"""Wire protocol and agent server figures: ``python -m bench.protocol_core [--quick]``.

Measures (medians of what it runs; the machine is shared, ratios hold better):

* sans-I/O core: request -> result round trips/s through two ``Connection``s
  (both sides encode and decode), and pushed events/s;
* a real agent server in a child process on loopback: sequential round trip
  p50 / p99, pipelined requests/s (32 in flight), history.since records/s
  (500 per batch), and the server's RSS growth per idle authenticated connection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.enums import ExecutionStatus, Role, Trigger
from shared.identity import public_key_line
from shared.models import Execution
from shared.protocol import Empty, HistorySince, JobsResult

REPO = Path(__file__).resolve().parent.parent


def core_figures(count: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from tests.shared.protocol_helpers import T0, Pair

    pair = Pair()
    pair.login(Role.ADMIN)
    server, client = pair.server, pair.client
    started = time.perf_counter()
    for _ in range(count):
        rid = client.send_request("jobs.list", Empty(), T0)
        for frame in client.data_to_send():
            server.receive_text(frame, T0)
        server.events_received()
        server.send_result(rid, JobsResult(jobs=[]))
        for frame in server.data_to_send():
            client.receive_text(frame, T0)
        client.events_received()
        # keep the token bucket out of the measurement
        server._tokens = float(server.limits.burst)
    rtt_per_s = count / (time.perf_counter() - started)
    ex = Execution(
        id="01J0000000000000000000000",
        job="backup",
        server="db1",
        run_id="R",
        trigger=Trigger.SCHEDULE,
        status=ExecutionStatus.RUNNING,
        seq=1,
        stdout_tail="x" * 200,
    )
    started = time.perf_counter()
    for _ in range(count):
        server.push("executions", ex)
        for frame in server.data_to_send():
            client.receive_text(frame, T0)
        client.events_received()
    events_per_s = count / (time.perf_counter() - started)
    return {"core round trips/s": rtt_per_s, "core events/s": events_per_s}


SERVE = """
import asyncio, sys
from pathlib import Path
from agentd.server import ServerConfig, serve
from agentd.server.ops_store import StoreOps
from agentd.store import Store, executions
from shared.enums import ExecutionStatus, Trigger
from shared.models import Execution
from shared.protocol import Limits

async def main(data: Path, rows: int) -> None:
    store = await Store.open(data / "agentd.db", synchronous="NORMAL")
    batch = [Execution(id=f"E{i:08d}", job="j", server="db1", run_id=f"E{i:08d}",
             trigger=Trigger.MANUAL, status=ExecutionStatus.SUCCESS, created_at=1.0,
             finished_at=2.0) for i in range(rows)]
    for i in range(0, rows, 1000):
        await store.call(executions.insert_executions, batch[i:i+1000])
    ops = StoreOps(store, agent_name="db1", agent_version="bench", data_dir=data)
    limits = Limits(requests_per_s=1e9, burst=10**9, max_in_flight=64)
    server = await serve(ops, ServerConfig(authorized_operators=data / "ops", limits=limits,
                         max_connections=1000), host="127.0.0.1", port=0, ssl_context=None)
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
"""


async def server_figures(quick: bool) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from tests.agentd.wsclient import Client

    key = ed25519.Ed25519PrivateKey.generate()
    rows = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "ops").write_text(f"admin bench {public_key_line(key)}\n")
        child = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is measured
            [sys.executable, "-c", SERVE, str(data), str(rows)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            url = f"ws://127.0.0.1:{port}"
            proc = psutil.Process(child.pid)
            out: dict[str, float] = {}
            client = await Client.login(url, key)
            n = 500 if quick else 3000
            times = []
            for _ in range(n):
                t = time.perf_counter()
                await client.call("jobs.list", Empty())
                times.append(time.perf_counter() - t)
            times.sort()
            out["jobs.list rtt p50 ms (store read)"] = statistics.median(times) * 1000
            out["jobs.list rtt p99 ms"] = times[int(len(times) * 0.99)] * 1000
            times = []
            for _ in range(n):
                t = time.perf_counter()
                await client.call("agent.info", Empty())
                times.append(time.perf_counter() - t)
            out["agent.info rtt p50 ms (no store)"] = statistics.median(times) * 1000
            t = time.perf_counter()
            total = 0
            while total < n * 2:
                await asyncio.gather(*(client.call("jobs.list", Empty()) for _ in range(32)))
                total += 32
            out["pipelined requests/s (32 in flight)"] = total / (time.perf_counter() - t)
            t = time.perf_counter()
            cursor, got = 0, 0
            while True:
                batch = await client.call("history.since", HistorySince(seq=cursor, limit=500))
                got += len(batch.executions)
                cursor = batch.next_seq
                if not batch.more:
                    break
            out["history.since records/s (500/batch)"] = got / (time.perf_counter() - t)
            await client.close()
            conns = 50 if quick else 200
            before = proc.memory_info().rss
            clients = [await Client.login(url, key) for _ in range(conns)]
            await asyncio.sleep(1)
            after = proc.memory_info().rss
            out["server RSS per idle connection KiB"] = (after - before) / conns / 1024
            for c in clients:
                await c.close()
            return out
        finally:
            child.terminate()
            child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    figures = core_figures(5_000 if args.quick else 30_000)
    figures |= asyncio.run(server_figures(args.quick))
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for name, value in figures.items():
        print(f"{name:45s} {value:12,.1f}")


if __name__ == "__main__":
    main()
