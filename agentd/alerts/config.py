"""``[alerts]`` and ``[alerts.channel.NAME]`` in agentd.toml, checked at load.

``agentd.config.load_config`` hands the ``alerts`` table to ``parse_alerts``
and stores the result as ``AgentConfig.alerts``; a bad value raises
``ConfigError`` naming the file, the line, the key and what is valid, so the
daemon never meets a bad channel at 3 a.m. See docs/alerts.md for each key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from shared.alerts import RateLimit
from shared.enums import AlertKind
from shared.tomlpos import TomlIndex

__all__ = [
    "AlertsConfig",
    "ChannelConfig",
    "CommandConfig",
    "EmailConfig",
    "WebhookConfig",
    "parse_alerts",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _Base(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    timeout_s: float = 10.0


class WebhookConfig(_Base, frozen=True, kw_only=True, tag="webhook"):
    """HTTP POST of the JSON body, signed with HMAC-SHA256 of ``secret`` if set."""

    url: str
    secret: str = ""
    headers: dict[str, str] = {}


class CommandConfig(_Base, frozen=True, kw_only=True, tag="command"):
    """A local program (argv, no shell): JSON body on stdin, ``SQU_ALERT_*`` in its env."""

    command: tuple[str, ...]
    timeout_s: float = 30.0


class EmailConfig(_Base, frozen=True, kw_only=True, tag="email"):
    """SMTP: STARTTLS (default on unless ``tls = "none"``), optional login."""

    host: str
    port: int = 587
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: str = ""  # From:; default squ-agentd@<agent name>
    to: tuple[str, ...] = ()
    # A CA file to trust instead of the system's (a private relay's certificate).
    ca_file: str = ""
    timeout_s: float = 30.0


ChannelConfig = WebhookConfig | CommandConfig | EmailConfig


class AlertsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The agent's alerting: channels by name, defaults, limits."""

    channels: tuple[str, ...] = ()  # default channels of every job (none: record only)
    on: tuple[AlertKind, ...] | None = None  # kinds that notify by default; None: all
    rate_limit_burst: int = 3
    rate_limit_window_s: float = 300.0
    long_running_factor: float | None = 10.0  # x the recent median; 0 turns it off
    long_running_check_s: float = 10.0
    max_attempts: int = 20  # per delivery, then it is marked failed
    retry_base_s: float = 5.0  # first wait after a failed delivery; doubles, up to retry_max_s
    retry_max_s: float = 600.0
    poll_s: float = 1.0
    channel: dict[str, ChannelConfig] = {}

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(burst=self.rate_limit_burst, window_s=self.rate_limit_window_s)


class _Invalid(Exception):
    def __init__(self, key: str, why: str, value: Any = None) -> None:
        super().__init__(why)
        self.key = key
        self.why = why
        self.value = value


def parse_alerts(table: Any, *, path: Path, text: str) -> AlertsConfig:
    """The checked ``[alerts]`` table; raises ``ConfigError`` (file, line, key, value)."""
    from agentd.config import ConfigError  # config imports this module

    index = TomlIndex(text)
    try:
        try:
            config = msgspec.convert(table, AlertsConfig)
        except msgspec.ValidationError as exc:
            where = str(exc).rsplit("$.", 1)[-1].rstrip("`") if "$." in str(exc) else ""
            why = str(exc).split(" - at ", 1)[0]
            unknown = re.match(r"Object contains unknown field `(.+)`", why)
            if unknown:
                where = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
                why = "unknown setting (docs/alerts.md lists them)"
            if where.endswith(".type"):
                why += "; a channel's type is webhook, command or email"
            raise _Invalid(where, why) from None
        _check(config)
    except _Invalid as bad:
        parts = ("alerts", *[p for p in re.split(r"[.\[\]]+", bad.key) if p]) if bad.key else ()
        line = None
        while parts and line is None:
            line = index.locate(parts)
            parts = parts[:-1]
        key = f"alerts.{bad.key}" if bad.key else "[alerts]"
        raise ConfigError(path, bad.why, key=key, value=bad.value, line=line) from None
    return config


def _check(config: AlertsConfig) -> None:
    for name in config.channels:
        if name not in config.channel:
            known = ", ".join(sorted(config.channel)) or "none defined"
            raise _Invalid("channels", f"no [alerts.channel.{name}] (channels: {known})", name)
    if config.rate_limit_burst < 1:
        raise _Invalid("rate_limit_burst", "must be at least 1", config.rate_limit_burst)
    if not config.rate_limit_window_s > 0:
        raise _Invalid("rate_limit_window_s", "must be > 0", config.rate_limit_window_s)
    factor = config.long_running_factor
    if factor is not None and factor != 0 and not factor > 1:
        raise _Invalid("long_running_factor", "must be > 1 (or 0: off)", factor)
    if not 1 <= config.max_attempts <= 1000:
        raise _Invalid("max_attempts", "must be 1-1000", config.max_attempts)
    if not 0 < config.retry_base_s <= config.retry_max_s:
        raise _Invalid("retry_base_s", "must be > 0 and at most retry_max_s", config.retry_base_s)
    if not 0.05 <= config.poll_s <= 60:
        raise _Invalid("poll_s", "must be 0.05-60 seconds", config.poll_s)
    if not 0.1 <= config.long_running_check_s <= 3600:
        raise _Invalid("long_running_check_s", "must be 0.1-3600 seconds")
    for name, channel in config.channel.items():
        key = f"channel.{name}"
        if not _NAME.match(name):
            raise _Invalid(key, "channel names are letters, digits, '.', '_', '-'", name)
        if not 0 < channel.timeout_s <= 600:
            raise _Invalid(f"{key}.timeout_s", "must be > 0 and at most 600", channel.timeout_s)
        if isinstance(channel, WebhookConfig):
            if not re.match(r"^https?://[^\s/]+", channel.url):
                raise _Invalid(f"{key}.url", "must be an http:// or https:// URL", channel.url)
        elif isinstance(channel, CommandConfig):
            if not channel.command or not channel.command[0].startswith("/"):
                raise _Invalid(
                    f"{key}.command", "must be a list whose first item is an absolute path"
                )
        elif isinstance(channel, EmailConfig):
            if not 1 <= channel.port <= 65535:
                raise _Invalid(f"{key}.port", "must be 1-65535", channel.port)
            for address in channel.to:
                if "@" not in address:
                    raise _Invalid(f"{key}.to", "must be e-mail addresses", address)
