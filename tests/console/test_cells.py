"""Cell renderers: durations, relative times, sparklines, hostile names cut to width."""

from __future__ import annotations

from console.widgets.cells import ago, duration, fit, sparkline, status_text


def test_duration_units() -> None:
    """Durations read as s, m+s, or h+m."""
    assert [duration(v) for v in (None, 1234, 42_000, 185_000, 7_800_000)] == [
        "-",
        "1.2s",
        "42s",
        "3m05s",
        "2h10m",
    ]


def test_ago_past_and_future() -> None:
    """Past times read "ago", future ones "in"."""
    assert ago(100.0, 160.0) == "1m ago"
    assert ago(3760.0, 160.0) == "in 1h00m"
    assert ago(None, 0.0) == "never"


def test_sparkline_scales_between_min_and_max() -> None:
    """The lowest value is the lowest bar, the highest the highest."""
    assert sparkline([1, 5, 9]) == "▁▄█"
    assert sparkline([]) == ""


def test_fit_makes_names_inert_and_cuts() -> None:
    """A hostile job name loses its escapes and is cut with an ellipsis."""
    assert fit("\x1b[2Jbackup-database-nightly", 10) == "backup-da…"


def test_status_is_a_word_not_only_a_colour() -> None:
    """Every status renders as a word (NO_COLOR loses nothing)."""
    assert status_text("awaiting_approval").plain == "approval"
    assert status_text("failed").plain == "failed"
