"""``squ-agentd next``: description and next fire times, text and JSON, errors exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentd.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_next(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["next", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_has_description_then_times_in_zone_and_utc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Text output: a description line, then one line per time in the zone and in UTC."""
    code, out, _ = run_next(
        capsys, "0 9 * * mon-fri", "--tz", "Europe/Berlin", "--after", "2026-06-05T12:00", "-n", "2"
    )
    assert code == 0
    assert out.splitlines() == [
        "At 09:00, Monday through Friday  [0 9 * * mon-fri, Europe/Berlin]",
        "2026-06-08 Mon 09:00:00 CEST (+0200)   2026-06-08 07:00:00 UTC",
        "2026-06-09 Tue 09:00:00 CEST (+0200)   2026-06-09 07:00:00 UTC",
    ]


def test_json_output_lists_local_and_utc_times(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints {expr, description, timezone, fire_times: [{local, utc}]}."""
    code, out, _ = run_next(
        capsys,
        "@hourly",
        "--tz",
        "Asia/Kolkata",
        "--after",
        "2026-01-01T00:10Z",
        "-n",
        "2",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["expr"] == "@hourly"
    assert doc["description"] == "Every hour"
    assert doc["timezone"] == "Asia/Kolkata"
    assert doc["fire_times"] == [
        {"local": "2026-01-01T06:00:00+05:30", "utc": "2026-01-01T00:30:00Z"},
        {"local": "2026-01-01T07:00:00+05:30", "utc": "2026-01-01T01:30:00Z"},
    ]


def test_fixed_time_in_dst_gap_is_shown_at_the_end_of_the_gap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fixed time in the spring-forward gap is listed once, at the gap's end, with a note."""
    code, out, _ = run_next(
        capsys, "30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T12:00", "-n", "1"
    )
    assert code == 0
    assert "2026-03-08 Sun 03:00:00 EDT (-0400)   2026-03-08 07:00:00 UTC" in out
    assert "DST gap" in out


def test_expression_given_as_separate_words_is_joined(capsys: pytest.CaptureFixture[str]) -> None:
    """EXPR may be given unquoted as five words."""
    code, out, _ = run_next(
        capsys, "0", "0", "1", "1", "*", "--tz", "UTC", "--after", "2026-06-01T00:00", "--json"
    )
    assert code == 0
    assert json.loads(out)["fire_times"][0]["utc"] == "2027-01-01T00:00:00Z"


def test_reboot_has_a_description_and_no_times(capsys: pytest.CaptureFixture[str]) -> None:
    """@reboot is described and lists no times."""
    code, out, _ = run_next(capsys, "@reboot", "--tz", "UTC")
    assert code == 0
    assert out.splitlines() == [
        "At every agent start  [@reboot, UTC]",
        "no scheduled times: runs once at every agent start",
    ]


def test_one_shot_at_time_is_listed_once(capsys: pytest.CaptureFixture[str]) -> None:
    """An ISO time is a one-shot schedule with exactly that fire time."""
    code, out, _ = run_next(
        capsys, "2026-12-01T02:30", "--tz", "Europe/Berlin", "--after", "2026-11-01T00:00", "--json"
    )
    assert code == 0
    assert json.loads(out)["fire_times"] == [
        {"local": "2026-12-01T02:30:00+01:00", "utc": "2026-12-01T01:30:00Z"}
    ]


def test_bad_expression_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad expression exits 2 and names field, value and valid range on stderr."""
    code, out, err = run_next(capsys, "61 * * * *", "--tz", "UTC")
    assert code == 2
    assert out == ""
    assert err == "squ-agentd next: '61 * * * *': minute field '61' is out of range 0-59\n"


def test_bad_zone_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --tz exits 2 naming the zone."""
    code, _, err = run_next(capsys, "@daily", "--tz", "Mars/Olympus")
    assert code == 2
    assert "unknown time zone 'Mars/Olympus'" in err


def test_bad_after_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An --after that is not ISO 8601 exits 2 with an example of a good one."""
    code, _, err = run_next(capsys, "@daily", "--tz", "UTC", "--after", "yesterday")
    assert code == 2
    assert "not an ISO 8601 time" in err


def test_n_out_of_range_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """-n outside 1-1000 exits 2 naming the option."""
    code, _, err = run_next(capsys, "@daily", "--tz", "UTC", "-n", "0")
    assert code == 2
    assert "-n: must be 1-1000, got 0" in err


def test_default_zone_is_the_machines_in_a_real_process() -> None:
    """Run as a process without --tz, the zone comes from the machine ($TZ here)."""
    env = {**os.environ, "TZ": "Australia/Lord_Howe"}
    proc = subprocess.run(
        [sys.executable, "-m", "agentd", "next", "@daily", "--json", "-n", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["timezone"] == "Australia/Lord_Howe"
    assert doc["fire_times"][0]["local"][11:19] == "00:00:00"
