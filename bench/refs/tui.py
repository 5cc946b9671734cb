"""Console floor: a bare Textual app, headless, with no squ-cron code in it.

* ``bare_first_paint``: start-up to first paint of an app showing a 50-row
  ``DataTable`` (the floor under "first paint of the Runs view");
* ``bare_input_latency``: key press -> handler latency while a ``Log`` widget
  takes 1,000 lines a second (the floor under the console's input latency).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["bare_first_paint", "bare_input_latency"]


def bare_first_paint(rows: int = 50, size: tuple[int, int] = (120, 40)) -> float:
    """Seconds from ``run_test`` entry to the first refresh after mount."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    painted = asyncio.Event()

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("id", "job", "agent", "status", "started", "duration")
            for i in range(rows):
                table.add_row(f"01J{i:023d}", f"job-{i}", "db1", "success", "18:00:00", "10 ms")
            self.call_after_refresh(painted.set)

    async def main() -> float:
        started = time.perf_counter()
        async with Bare().run_test(size=size) as pilot:
            await painted.wait()
            elapsed = time.perf_counter() - started
            await pilot.pause()
        return elapsed

    return asyncio.run(main())


def bare_input_latency(
    presses: int = 40, lines_per_s: int = 1000, size: tuple[int, int] = (120, 40)
) -> list[float]:
    """Key press -> handler latencies (s) while a Log widget streams lines."""
    from textual import events
    from textual.app import App, ComposeResult
    from textual.widgets import Log

    latencies: list[float] = []
    sent: list[float] = []

    class Streaming(App[None]):
        def compose(self) -> ComposeResult:
            yield Log(max_lines=5000)

        def on_mount(self) -> None:
            self.counter = 0
            self.log_view = self.query_one(Log)
            self.set_interval(0.02, self.feed)  # 50 batches a second

        def feed(self) -> None:
            batch = lines_per_s // 50
            self.log_view.write_lines(
                f"line {self.counter + i} some output text" for i in range(batch)
            )
            self.counter += batch

        def on_key(self) -> None:
            latencies.append(time.perf_counter() - sent[-1])

    async def main() -> None:
        app = Streaming()
        async with app.run_test(size=size):
            await asyncio.sleep(0.3)
            for _ in range(presses):
                # Posted as the terminal driver would, not through Pilot.press,
                # which waits for the app to go idle (it never does while streaming).
                sent.append(time.perf_counter())
                app.post_message(events.Key("j", "j"))
                await asyncio.sleep(0.05)

    asyncio.run(main())
    return latencies
