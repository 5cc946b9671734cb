"""The agent's data directory and its ``agentd.toml``.

Every ``squ-agentd`` command works on one data directory (``--data-dir``,
else :func:`default_data_dir`). ``squ-agentd init`` calls
:func:`init_data_dir` to lay it out; ``serve`` and the other commands call
:func:`load_config` and get a frozen :class:`AgentConfig` whose every value
has been checked, so the daemon never meets a bad setting at 3 a.m. A missing
``agentd.toml`` means every default; a bad one raises :class:`ConfigError`
naming the file, the line, the key, the value and what would be valid.

Layout of a data directory::

    DIR/agentd.toml   settings (commented defaults written by init)
    DIR/jobs.d/       job files (agentd.jobsdir)
    DIR/agentd.db     the store (agentd.store)
    DIR/runs/         one directory per execution (supervisor)
    DIR/logs/         execution logs (agentd.logs)
    DIR/tls/, DIR/authorized_operators   made by init through agentd.server.boot
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import SquError
from shared.tomlpos import TomlIndex

if TYPE_CHECKING:
    from agentd.alerts.config import AlertsConfig

__all__ = [
    "CONFIG_FILE",
    "DATA_DIR_ENV",
    "AgentConfig",
    "ConfigError",
    "InitResult",
    "config_template",
    "default_data_dir",
    "init_data_dir",
    "load_config",
    "system_timezone",
]

CONFIG_FILE = "agentd.toml"
STORE_FILE = "agentd.db"
DATA_DIR_ENV = "SQU_AGENTD_DATA"
ROOT_DATA_DIR = Path("/var/lib/squ-agentd")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ConfigError(SquError):
    """A setting in ``agentd.toml`` that cannot be used; names file, line, key and value."""

    code = "invalid_config"

    def __init__(
        self, path: Path, why: str, *, key: str = "", value: Any = None, line: int | None = None
    ) -> None:
        place = f"{path}:{line}" if line is not None else str(path)
        shown = "" if value is None else f" (got {value!r})"
        setting = f"{key}: " if key else ""
        super().__init__(f"{place}: {setting}{why}{shown}", file=str(path), key=key, line=line)
        self.path = path
        self.key = key
        self.line = line


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Everything the agent is configured with; built by ``load_config``, never invalid."""

    data_dir: Path
    name: str  # the server name consoles show; default: this host's name
    timezone: str  # jobs without a zone of their own use this one; default: the system's
    listen_host: str = "127.0.0.1"
    listen_port: int = 7421
    jobs_dir: Path | None = None  # None: DIR/jobs.d (always a Path after construction)
    kill_grace_s: float = 10.0  # SIGTERM -> SIGKILL; agent-wide default (jobs carry their own)
    log_max_age_days: int = 30
    log_max_total_mb: int = 1024
    history_days: int = 90
    min_free_disk_mb: int = 100  # below this the agent starts no new work and says so
    alerts: AlertsConfig = field(default_factory=lambda: _alerts_config())  # docs/alerts.md

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.jobs_dir is None:
            object.__setattr__(self, "jobs_dir", self.data_dir / "jobs.d")

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def store_path(self) -> Path:
        return self.data_dir / STORE_FILE

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def min_free_bytes(self) -> int:
        return self.min_free_disk_mb * 1024 * 1024

    @property
    def log_max_total_bytes(self) -> int:
        return self.log_max_total_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Setting:
    attr: str  # the AgentConfig field it sets
    kind: type
    valid: str  # what would be valid, for errors
    note: str  # the comment init writes beside it
    check: Callable[[Any], bool] | None = None


def _alerts_config(table: Any = None, path: Path | None = None, text: str = "") -> AlertsConfig:
    # Imported on use: this module stays standard-library only for the CLI's cheap paths.
    from agentd.alerts.config import AlertsConfig, parse_alerts

    if table is None or path is None:
        return AlertsConfig()
    return parse_alerts(table, path=path, text=text)


def _no_space(value: str) -> bool:
    return bool(value) and not any(c.isspace() or c == "\0" for c in value)


# (section, key) -> setting. One table drives loading, validation and the file init writes.
_SETTINGS: dict[tuple[str, str], _Setting] = {
    ("agent", "name"): _Setting(
        "name", str, "a server name: letters, digits, '.', '_', '-'", "this host's name",
        lambda v: bool(_NAME.match(v)),
    ),
    ("agent", "timezone"): _Setting(
        "timezone", str, "an IANA zone such as Europe/Paris",
        "the system's zone; jobs without a zone of their own use it",
    ),
    ("server", "listen"): _Setting(
        "listen_host", str, "an IP address or host name", "WebSocket server address", _no_space
    ),
    ("server", "port"): _Setting(
        "listen_port", int, "0-65535 (0: any free port)", "", lambda v: 0 <= v <= 65535
    ),
    ("jobs", "dir"): _Setting(
        "jobs_dir", str, "a directory, absolute or relative to the data dir",
        "job files, relative to the data dir", _no_space,
    ),
    ("jobs", "kill_grace_s"): _Setting(
        "kill_grace_s", float, "0-3600 seconds", "SIGTERM, then SIGKILL after this",
        lambda v: 0 <= v <= 3600,
    ),
    ("logs", "max_age_days"): _Setting(
        "log_max_age_days", int, "1-36500 days", "logs older than this are removed",
        lambda v: 1 <= v <= 36500,
    ),
    ("logs", "max_total_mb"): _Setting(
        "log_max_total_mb", int, "at least 1 MB", "beyond this the oldest logs go first",
        lambda v: v >= 1,
    ),
    ("history", "retention_days"): _Setting(
        "history_days", int, "1-36500 days", "executions are kept this long",
        lambda v: 1 <= v <= 36500,
    ),
    ("disk", "min_free_mb"): _Setting(
        "min_free_disk_mb", int, "0 or more MB", "below this, no new work starts",
        lambda v: v >= 0,
    ),
}  # fmt: skip


def default_data_dir(*, euid: int | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the agent keeps its data when ``--data-dir`` is not given.

    ``$SQU_AGENTD_DATA`` if set; else ``/var/lib/squ-agentd`` for root; else
    ``$XDG_DATA_HOME/squ-agentd``, or ``~/.local/share/squ-agentd``.
    """
    env = os.environ if environ is None else environ
    uid = os.geteuid() if euid is None else euid
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV])
    if uid == 0:
        return ROOT_DATA_DIR
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg.startswith("/"):  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "squ-agentd"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "squ-agentd"


def system_timezone() -> str:
    """This machine's IANA zone name: $TZ, /etc/timezone, the /etc/localtime link, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name and not name.startswith("/"):
            if _is_zone(name):
                return name
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _defaults(data_dir: Path) -> dict[str, Any]:
    return {
        "data_dir": data_dir,
        "name": socket.gethostname(),
        "timezone": system_timezone(),
        "jobs_dir": data_dir / "jobs.d",
    }


def load_config(data_dir: Path) -> AgentConfig:
    """Read ``DIR/agentd.toml`` (all defaults if it does not exist) into a checked config.

    Raises ``ConfigError`` naming the file, line, key and value of the first bad setting.
    """
    data_dir = Path(data_dir)
    path = data_dir / CONFIG_FILE
    values = _defaults(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AgentConfig(**values)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.match(r"^(.*) \(at line (\d+), column \d+\)$", str(exc))
        if match is None:
            raise ConfigError(path, f"TOML syntax error: {exc}") from None
        raise ConfigError(
            path, f"TOML syntax error: {match.group(1)}", line=int(match.group(2))
        ) from None

    index = TomlIndex(text)
    sections = sorted({s for s, _ in _SETTINGS} | {"alerts"})
    for section, table in doc.items():
        if section == "alerts":
            # Channels are tables of their own kind: agentd.alerts.config checks them.
            values["alerts"] = _alerts_config(table, path, text)
            continue
        if section not in sections:
            raise ConfigError(
                path,
                f"unknown section{_did_you_mean(section, sections)}",
                key=f"[{section}]",
                line=index.locate((section,)),
            )
        if not isinstance(table, dict):
            raise ConfigError(
                path, "must be a table", key=f"[{section}]", line=index.locate((section,))
            )
        keys = sorted(k for s, k in _SETTINGS if s == section)
        for key, value in table.items():
            line = index.locate((section, key))
            dotted = f"{section}.{key}"
            spec = _SETTINGS.get((section, key))
            if spec is None:
                raise ConfigError(
                    path, f"unknown setting{_did_you_mean(key, keys)}", key=dotted, line=line
                )
            values[spec.attr] = _checked(path, dotted, line, value, spec)
    if isinstance(values["jobs_dir"], str):
        values["jobs_dir"] = data_dir / values["jobs_dir"]  # absolute paths stay as they are
    return AgentConfig(**values)


def _checked(path: Path, key: str, line: int | None, value: Any, spec: _Setting) -> Any:
    kind, valid, check = spec.kind, spec.valid, spec.check
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(path, f"expected {valid}", key=key, value=value, line=line)
    if key == "agent.timezone":
        if not _is_zone(str(value)):
            raise ConfigError(
                path, f"unknown time zone; expected {valid}", key=key, value=value, line=line
            )
    elif check is not None and not check(value):
        raise ConfigError(path, f"expected {valid}", key=key, value=value, line=line)
    return value


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"


# --------------------------------------------------------------------------- init


@dataclass(frozen=True, slots=True, kw_only=True)
class InitResult:
    """What ``init_data_dir`` made and what was already there (it never overwrites)."""

    data_dir: Path
    created: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def config_template(data_dir: Path) -> str:
    """``agentd.toml`` with every setting commented out at its default (this host's values)."""
    defaults = AgentConfig(**_defaults(data_dir))
    lines = [
        "# squ-agentd settings. Every setting is shown at its default, commented out:",
        "# uncomment and change what you need, then restart the agent.",
        "# Jobs are not configured here: put them in jobs.d/*.toml (see docs/jobs.md).",
    ]
    section = ""
    for (sec, key), spec in _SETTINGS.items():
        if sec != section:
            lines += ["", f"[{sec}]"]
            section = sec
        value = "jobs.d" if key == "dir" else getattr(defaults, spec.attr)
        rendered = f'"{value}"' if isinstance(value, str) else str(value)
        comment = f"  # {spec.note}" if spec.note else ""
        lines.append(f"# {key} = {rendered}{comment}")
    return "\n".join(lines) + "\n"


def init_data_dir(data_dir: Path) -> InitResult:
    """Lay out a data directory: config with commented defaults, jobs.d, runs, logs, store.

    Idempotent: anything that exists is left as it is (an existing
    ``agentd.toml`` is never overwritten). The directory is made mode 0700.
    """
    data_dir = Path(data_dir)
    result = InitResult(data_dir=data_dir)
    _make_dir(data_dir, 0o700, result)
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        result.warnings.append(
            f"{data_dir} is mode {mode:04o}; the agent's data should be private: "
            f"chmod 700 {data_dir}"
        )
    config = data_dir / CONFIG_FILE
    try:
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        result.existing.append(config)
    except OSError as exc:
        raise _cannot_create(config, exc) from None
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(config_template(data_dir))
        result.created.append(config)
    # jobs.d is read by jobsdir, which refuses group/world-writable dirs: 0755 is the widest.
    _make_dir(data_dir / "jobs.d", 0o755, result)
    _make_dir(data_dir / "runs", 0o700, result)
    _make_dir(data_dir / "logs", 0o700, result)
    store = data_dir / STORE_FILE
    if store.exists():
        result.existing.append(store)
    else:
        _create_store(store)
        result.created.append(store)
    return result


def _make_dir(path: Path, mode: int, result: InitResult) -> None:
    try:
        try:
            path.mkdir(mode=mode, parents=False)
        except FileExistsError:
            if not path.is_dir():
                raise ConfigError(path, "exists and is not a directory") from None
            result.existing.append(path)
            return
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=mode)
        os.chmod(path, mode)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise _cannot_create(path, exc) from None
    result.created.append(path)


def _cannot_create(path: Path, exc: OSError) -> ConfigError:
    why = exc.strerror or str(exc)
    hint = " (run as root, or pass --data-dir to a directory you own)"
    return ConfigError(path, f"cannot create: {why}" + (hint if exc.errno == 13 else ""))


def _create_store(path: Path) -> None:
    """Create the store (schema, epoch) so the first ``serve`` finds it ready."""
    from agentd.store import Store  # heavy import (sqlite-utils), only needed here

    store = Store.open_sync(path)
    store.close_sync()
