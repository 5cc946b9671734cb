"""Prometheus metrics: the text format, the HTTP responder, and a real scrape of a running agent."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.metrics import Registry, escape_label, format_value
from agentd.metrics_http import BadMetricsAddress, MetricsServer, parse_listen
from tests.e2e.agentkit import AgentProc, wait_for

# One sample line of the text format 0.0.4: name{labels} value
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\]|\\.)*",?)*\})? \S+$')


def _parse(text: str) -> dict[str, float]:
    """Sample lines -> {series: value}; fails on any line that is not valid text format."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert SAMPLE.match(line), f"not a valid sample line: {line!r}"
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
    return out


def test_counter_and_labels_render_in_text_format() -> None:
    """A labelled counter renders HELP, TYPE and one escaped sample per label set."""
    r = Registry()
    r.counter("x_total", "Things.")
    r.inc("x_total", job='we"ird\\job\n')
    r.inc("x_total", 2, job="a")
    text = r.render()
    assert "# TYPE x_total counter" in text
    assert 'x_total{job="a"} 2' in text
    assert 'x_total{job="we\\"ird\\\\job\\n"} 1' in text
    _parse(text)


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count() -> None:
    """Histogram buckets count observations <= bound, cumulatively, plus +Inf, _sum, _count."""
    r = Registry()
    r.histogram("d_seconds", "Durations.", [1, 10])
    for value in (0.5, 5, 50):
        r.observe("d_seconds", value, job="j")
    samples = _parse(r.render())
    assert samples['d_seconds_bucket{job="j",le="1"}'] == 1
    assert samples['d_seconds_bucket{job="j",le="10"}'] == 2
    assert samples['d_seconds_bucket{job="j",le="+Inf"}'] == 3
    assert samples['d_seconds_sum{job="j"}'] == 55.5
    assert samples['d_seconds_count{job="j"}'] == 3


def test_counter_refuses_to_go_down() -> None:
    """A negative increment is our own misuse and raises at once."""
    r = Registry()
    r.counter("x_total", "Things.")
    with pytest.raises(ValueError, match="cannot go down"):
        r.inc("x_total", -1)


def test_values_and_labels_format() -> None:
    """Integers print without a decimal point; infinities and NaN are spelled out."""
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("nan")) == "NaN"
    assert escape_label('a"b') == 'a\\"b'


def test_listen_address_parsing() -> None:
    """HOST:PORT and [v6]:PORT parse; 'off' disables; nonsense names the flag."""
    assert parse_listen("127.0.0.1:7422") == ("127.0.0.1", 7422)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("off") is None
    with pytest.raises(BadMetricsAddress, match="--metrics-listen"):
        parse_listen("7422")
    with pytest.raises(BadMetricsAddress, match="outside"):
        parse_listen("127.0.0.1:70000")


async def _raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return reply


async def test_responder_answers_get_404_405_and_garbage() -> None:
    """GET /metrics is 200 with the 0.0.4 content type; other paths, methods and junk are not."""

    async def render() -> str:
        return "up 1\n"

    server = MetricsServer(render, "127.0.0.1", 0)
    await server.start()
    try:
        ok = await _raw_request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 OK")
        assert b"text/plain; version=0.0.4" in ok
        assert ok.endswith(b"\r\n\r\nup 1\n")
        nf = await _raw_request(server.port, b"GET /nope HTTP/1.1\r\n\r\n")
        assert nf.startswith(b"HTTP/1.1 404")
        post = await _raw_request(server.port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert post.startswith(b"HTTP/1.1 405")
        junk = await _raw_request(server.port, b"\x00\xffhello\r\n\r\n")
        assert junk.startswith(b"HTTP/1.1 400")
        huge = await _raw_request(server.port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
        assert huge.startswith(b"HTTP/1.1 431")
    finally:
        await server.close()
        await server.close()  # safe twice


class MetricsAgent(AgentProc):
    """An agent that serves metrics on a free loopback port and logs JSON lines."""

    def _serve_argv(self) -> list[str]:
        return [
            sys.executable, "-m", "agentd", "serve", "--data-dir", str(self.data_dir),
            "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
        ]  # fmt: skip

    def metrics_url(self) -> str:
        def found() -> str | None:
            for line in self.stderr().splitlines():
                if line.startswith("{") and "metrics_url" in line:
                    return str(json.loads(line)["metrics_url"])
            return None

        return wait_for(found, what="the metrics URL in the agent's JSON log")


@pytest.fixture
def magent(tmp_path: Path) -> Iterator[MetricsAgent]:
    proc = MetricsAgent(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.cleanup()


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return _parse(reply.read().decode())


def test_scrape_of_running_agent_counts_executions_by_job_and_status(magent: MetricsAgent) -> None:
    """A real agent's endpoint counts finished runs by job and status, with durations."""
    magent.write_jobs(
        "jobs.toml",
        """
        [job.ok]
        command = "true"
        [job.bad]
        command = "exit 3"
        [job.slow]
        command = "sleep 30"
        """,
    )
    magent.start()
    url = magent.metrics_url()
    before = _scrape(url)
    assert before["squ_agentd_up"] == 1
    assert before["squ_agentd_jobs"] == 3
    magent.request("run", {"job": "ok", "wait": True})
    magent.request("run", {"job": "ok", "wait": True})  # one at a time: no overlap skip
    magent.request("run", {"job": "bad"})
    magent.request("run", {"job": "slow"})

    def counted() -> dict[str, float] | None:
        s = _scrape(url)
        done = s.get('squ_agentd_executions_total{job="ok",status="success"}') == 2
        return (
            s if done and s.get('squ_agentd_executions_total{job="bad",status="failed"}') else None
        )

    samples = wait_for(counted, what="two successes of 'ok' and a failure of 'bad'")
    assert samples['squ_agentd_executions_total{job="bad",status="failed"}'] == 1
    assert samples['squ_agentd_execution_duration_seconds_count{job="ok"}'] == 2
    assert samples["squ_agentd_running_executions"] == 1  # 'slow' is still running
    assert samples['squ_agentd_last_success_timestamp_seconds{job="ok"}'] > 1e9
    assert samples["squ_agentd_scheduler_lag_seconds"] == 0
    assert samples["squ_agentd_sync_backlog"] == 0
    # A repeated scrape counts nothing twice.
    assert _scrape(url)['squ_agentd_executions_total{job="ok",status="success"}'] == 2


def test_last_success_survives_agent_restart(magent: MetricsAgent) -> None:
    """After a restart, counters start again but each job's last success is read back."""
    magent.write_jobs("jobs.toml", '[job.ok]\ncommand = "true"\n')
    magent.start()
    magent.request("run", {"job": "ok", "wait": True})
    magent.stop()
    (magent.data_dir / "agentd.stderr").write_text("")
    magent.start()
    samples = _scrape(magent.metrics_url())
    assert samples['squ_agentd_last_success_timestamp_seconds{job="ok"}'] > 1e9
    assert 'squ_agentd_executions_total{job="ok",status="success"}' not in samples


def test_metrics_port_in_use_leaves_agent_running(magent: MetricsAgent) -> None:
    """A taken metrics port is logged as an error; the agent still serves its jobs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        magent._serve_argv = lambda: [  # type: ignore[method-assign]
            sys.executable, "-m", "agentd", "serve", "--data-dir", str(magent.data_dir),
            "--metrics-listen", f"127.0.0.1:{port}", "--log-format", "logfmt",
        ]  # fmt: skip
        magent.start()
        wait_for(lambda: "cannot listen" in magent.stderr(), what="the metrics bind error")
        assert magent.request("status")["pid"] == magent.proc.pid  # type: ignore[union-attr]
        assert "level=error logger=agentd.metrics" in magent.stderr()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.mark.skipif(
    importlib.util.find_spec("agentd.alerts.delivery") is None, reason="alert delivery not built"
)
def test_alert_delivery_failure_is_counted_by_channel(magent: MetricsAgent) -> None:
    """An alert whose channel fails for good is counted once, under its channel's name."""
    (magent.data_dir / "agentd.toml").write_text(
        """
[alerts]
channels = ["pager"]
max_attempts = 1
poll_s = 0.1
[alerts.channel.pager]
type = "command"
command = ["/bin/false"]
"""
    )
    magent.write_jobs("bad.toml", '[job.bad]\ncommand = "exit 3"\n')
    magent.start()
    url = magent.metrics_url()
    magent.request("run", {"job": "bad", "wait": True})
    series = 'squ_agentd_alert_delivery_failures_total{channel="pager"}'
    samples = wait_for(lambda: (s := _scrape(url)).get(series) and s, what="a failed delivery")
    assert samples[series] == 1
    assert samples['squ_agentd_alert_deliveries{channel="pager",state="failed"}'] == 1
    assert _scrape(url)[series] == 1  # counted once
