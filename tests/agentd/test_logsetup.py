"""Structured logs: one line per record on stderr, JSON or logfmt, for journald."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agentd.logsetup import FORMATS, install, make_formatter


def _emit(fmt: str, msg: str, *args: object, exc: bool = False, **extra: object) -> str:
    stream = io.StringIO()
    install(fmt, "debug", stream=stream)
    log = logging.getLogger("agentd.test")
    if exc:
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            log.exception(msg, *args, extra=extra)
    else:
        log.info(msg, *args, extra=extra)
    logging.getLogger().handlers.clear()
    return stream.getvalue()


def test_json_line_has_level_logger_message_and_extras() -> None:
    """A JSON record carries ts, level, logger, the formatted message and extra fields."""
    out = _emit("json", "job %s started", "backup", exec_id="01ABC")
    record = json.loads(out)
    assert record["level"] == "info"
    assert record["logger"] == "agentd.test"
    assert record["msg"] == "job backup started"
    assert record["exec_id"] == "01ABC"
    assert record["ts"].endswith("+00:00")


def test_json_traceback_stays_on_one_line() -> None:
    """An exception's traceback is inside the JSON object, never a second journal line."""
    out = _emit("json", "failed", exc=True)
    assert out.count("\n") == 1
    assert "RuntimeError: boom" in json.loads(out)["exc"]


def test_logfmt_quotes_values_with_spaces_and_quotes() -> None:
    """logfmt quotes and escapes values that hold spaces, quotes or newlines."""
    out = _emit("logfmt", 'said "hi"\nthere', job="nightly backup")
    assert out.count("\n") == 1
    assert "level=info logger=agentd.test" in out
    assert 'msg="said \\"hi\\"\\nthere"' in out
    assert 'job="nightly backup"' in out


def test_plain_format_escapes_newlines() -> None:
    """The plain text format keeps a multi-line message on one line."""
    out = _emit("plain", "a\nb")
    assert out == "INFO agentd.test: a\\nb\n"


def test_install_twice_does_not_duplicate_lines() -> None:
    """Installing again swaps the handler: each record is written once."""
    stream = io.StringIO()
    install("json", stream=stream)
    install("json", stream=stream)
    logging.getLogger("agentd.test").warning("once")
    logging.getLogger().handlers.clear()
    assert stream.getvalue().count("once") == 1


def test_unknown_format_names_the_valid_ones() -> None:
    """An unknown format is refused with the list of valid ones."""
    with pytest.raises(ValueError, match="json"):
        make_formatter("xml")
    assert set(FORMATS) == {"time", "plain", "json", "logfmt"}
