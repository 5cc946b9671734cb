"""Structured logs on stderr for journald: JSON lines, logfmt, or plain text.

``squ-agentd serve --log-format json|logfmt|plain|time`` calls
:func:`install` once, before the agent starts; every ``logging`` record from
then on is one line on stderr. journald keeps each line as one entry (and adds
its own timestamp, so ``plain`` leaves ours out); ``json`` and ``logfmt`` carry
a timestamp, the level, the logger, the message and any ``extra={...}`` fields
a caller attached, so ``journalctl -u squ-agentd -o cat | jq`` works.

A line never spans two lines: newlines inside a message or a traceback are
escaped (``\\n``), because journald splits on them and a log reader should not
have to guess where a record ends.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["FORMATS", "JsonFormatter", "LogfmtFormatter", "install", "make_formatter"]

FORMATS = ("time", "plain", "json", "logfmt")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The record as ordered key/value pairs: ts, level, logger, msg, extras, exc."""
    out: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_") and key not in out:
            out[key] = value
    if record.exc_info:
        out["exc"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        out["exc"] = record.exc_text
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values that JSON cannot hold are shown with ``str()``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), default=str, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs on one line; values with spaces, quotes or ``=`` are quoted."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record, self).items())


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' ="\\\n\r\t') and text.isprintable():
        return text
    # json.dumps escapes quotes, backslashes, newlines and control characters.
    return json.dumps(text, ensure_ascii=False)


class _OneLineFormatter(logging.Formatter):
    """The classic text format, with newlines escaped so a record stays one journal entry."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for one of :data:`FORMATS`; ``ValueError`` names the valid ones."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "logfmt":
        return LogfmtFormatter()
    if fmt == "plain":
        return _OneLineFormatter("%(levelname)s %(name)s: %(message)s")
    if fmt == "time":
        return _OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")


def install(fmt: str = "time", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) in ``fmt``; replaces earlier handlers.

    Call once at start-up, before anything logs. Calling it again (tests) swaps
    the handler rather than adding a second one, so no line is written twice.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
