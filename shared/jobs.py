"""The one door for untrusted job definitions: files, the wire, crontab imports.

Call :func:`parse_job` on anything that claims to be a job (a TOML table, the
params of a wire request) before it reaches the store or the scheduler. It
returns a frozen :class:`~shared.models.Job` that passed every check, or raises
:class:`~shared.errors.InvalidJob` naming the place, the field, the value and
what would be valid. An invalid ``Job`` therefore never exists past this door.

:func:`parse_jobs_toml` parses one ``jobs.d`` file's text (``[defaults]`` and
``[job.<name>]`` tables) without touching the disk; :func:`jobs_to_toml` writes
the same shape back, so an imported crontab or an exported job round-trips.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from shared import cron
from shared.enums import AlertKind, Approval, Backoff, Concurrency, Misfire, RetryOn
from shared.envrules import check_env_names
from shared.errors import InvalidJob, InvalidSchedule, SquError
from shared.models import AlertPolicy, Job, Parameter, RetryPolicy
from shared.tomlpos import TomlIndex

__all__ = [
    "MAX_LOG_BYTES",
    "MIN_LOG_BYTES",
    "NAME_PATTERN",
    "InvalidJobFile",
    "InvalidParameter",
    "definition_hash",
    "job_to_toml",
    "jobs_to_toml",
    "parse_job",
    "parse_jobs_toml",
    "parse_params",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
_SCRIPT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}@sha256:[0-9a-f]{64}$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# POSIX-portable user/group names (plus Samba's trailing $), or a numeric id.
_ACCOUNT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10})$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")

MIN_LOG_BYTES = 4 * 1024
MAX_LOG_BYTES = 64 * 1024**3
_MAX_COMMAND = 64 * 1024
_MAX_TEXT = 4096
_MAX_SHOWN = 120  # characters of a bad value echoed in an error

# Builds the InvalidJob for one field of the job being checked: bad(field, why, value=None).
_Bad = Callable[..., InvalidJob]
_MAX_RETRIES = 100
_MAX_GRACE_S = 3600.0
_PARAM_TYPES = ("str", "int", "float", "bool", "choice")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

# Enum-valued fields, so a bad value's error can list the valid ones.
_ENUM_FIELDS: dict[str, type[Any]] = {
    "concurrency": Concurrency,
    "misfire": Misfire,
    "approval": Approval,
    "retry.backoff": Backoff,
    "retry.on": RetryOn,
    "alerts.on": AlertKind,
}
_STRUCT_AT: dict[str, type[msgspec.Struct]] = {
    "": Job,
    "retry": RetryPolicy,
    "parameters": Parameter,
    "alerts": AlertPolicy,
}


class InvalidJobFile(SquError):
    """A jobs file that cannot be used as a whole: TOML syntax, layout, or bad jobs in it.

    ``problems`` holds one line per problem; the message joins them, so a CLI
    or a reload log shows every problem of the file at once.
    """

    code = "invalid_job_file"

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems), where=where, problems=list(problems))
        self.where = where
        self.problems = list(problems)


class InvalidParameter(SquError):
    """A manual trigger's parameter value that the job's typed parameters refuse."""

    code = "invalid_parameter"

    def __init__(self, job: str, parameter: str, why: str, value: str | None = None) -> None:
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(
            f"job {job!r}: parameter {parameter!r}: {why}{shown}", job=job, parameter=parameter
        )
        self.parameter = parameter
        self.why = why


# --------------------------------------------------------------------------- parse_job


def parse_job(data: Mapping[str, Any], *, where: str) -> Job:
    """Validate untrusted job data (a TOML table, wire params) into a ``Job``.

    ``where`` names the place for the error ("jobs.d/backup.toml:3 [job.backup]",
    "line 3", "request 17"). Raises ``InvalidJob`` for the first problem found;
    returns a ``Job`` the store and scheduler can trust.
    """
    if not isinstance(data, Mapping):
        raise InvalidJob("job", f"expected a table of fields, got {_kind(data)}", where=where)
    prepared = _prepare(data, where)
    try:
        job = msgspec.convert(prepared, Job)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(str(exc), prepared, where) from None
    _check_job(job, where)
    return job


def _prepare(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Shape fixes before type checks: TOML datetimes for ``at``, env values named by key."""
    prepared = dict(data)
    at = prepared.get("at")
    if isinstance(at, dt.datetime | dt.date):
        # TOML has a datetime type; an unquoted `at = 2026-12-01T03:00:00` is what people write.
        prepared["at"] = at.isoformat()
    for table in ("env", "labels"):
        values = prepared.get(table)
        if isinstance(values, Mapping):
            for key, value in values.items():
                if not isinstance(value, str):
                    # msgspec would say "$.env[...]"; name the key instead.
                    raise InvalidJob(
                        f"{table}.{key}",
                        f"expected a string, got {_kind(value)} (quote it)",
                        where=where,
                        value=_shown(value),
                    )
    return prepared


_MSG_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MSG_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`")
_MSG_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_MSG_ENUM = re.compile(r"Invalid enum value (?P<value>.*)")
_MSG_EXPECTED = re.compile(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`")


def _from_validation_error(text: str, data: Mapping[str, Any], where: str) -> InvalidJob:
    """Turn msgspec's "Expected `int`, got `str` - at `$.retry.count`" into an InvalidJob."""
    match = _MSG_AT.match(text)
    assert match is not None  # the pattern matches any text
    msg = match.group("msg")
    path = (match.group("path") or "").lstrip(".")
    value = _value_at(data, path)
    if (m := _MSG_UNKNOWN.match(msg)) is not None:
        name = m.group("field")
        struct = _STRUCT_AT.get(re.sub(r"\[\d+\]", "", path), Job)
        known = list(struct.__struct_fields__)
        field = f"{path}.{name}" if path else name
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"
        return InvalidJob(field, f"unknown field{hint}", where=where)
    if (m := _MSG_MISSING.match(msg)) is not None:
        name = m.group("field")
        field = f"{path}.{name}" if path else name
        return InvalidJob(field, "is required", where=where)
    if (m := _MSG_ENUM.match(msg)) is not None:
        enum = _ENUM_FIELDS.get(re.sub(r"\[\d+\]", "", path))
        valid = f"; valid: {', '.join(e.value for e in enum)}" if enum else ""
        return InvalidJob(path, f"invalid value{valid}", where=where, value=_shown(value))
    if (m := _MSG_EXPECTED.match(msg)) is not None:
        want = m.group("want").replace(" | null", "")
        got = m.group("got")
        return InvalidJob(
            path or "job", f"expected {want}, got {got}", where=where, value=_shown(value)
        )
    return InvalidJob(path or "job", msg, where=where, value=_shown(value))


def _value_at(data: Any, path: str) -> Any:
    """The value at a msgspec path like ``retry.on[0]``, or None if it cannot be found."""
    current = data
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            if part.startswith("["):
                current = current[int(part[1:-1])]
            else:
                current = current[part]
        except (KeyError, IndexError, TypeError):
            return None
    return current


def _shown(value: Any) -> Any:
    """Values worth echoing in an error: scalars yes (long text clipped), whole tables no."""
    if isinstance(value, str) and len(value) > _MAX_SHOWN:
        return value[:_MAX_SHOWN] + "…"
    return value if isinstance(value, str | int | float | bool) else None


def _kind(value: Any) -> str:
    return {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _check_job(job: Job, where: str) -> None:
    """Semantic checks that types alone cannot express; raise the first problem."""

    def bad(field: str, why: str, value: Any = None) -> InvalidJob:
        return InvalidJob(field, why, where=where, value=_shown(value))

    if not _NAME.match(job.name):
        raise bad(
            "name",
            "must be a slug: lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, at most 63 characters",
            job.name,
        )
    if (job.command is None) == (job.script is None):
        raise bad("command", "give exactly one of command or script")
    if job.command is not None:
        if not job.command.strip():
            raise bad("command", "must not be empty")
        _check_text(job.command, "command", _MAX_COMMAND, bad)
    if job.script is not None and not _SCRIPT.match(job.script):
        raise bad("script", "must be '<name>@sha256:<64 hex digits>'", job.script)
    first = job.interpreter.split(" ", 1)[0]
    if not first.startswith("/") or "\0" in job.interpreter:
        raise bad("interpreter", "must be an absolute path such as /bin/sh", job.interpreter)
    _check_text(job.description, "description", _MAX_TEXT, bad)
    for index, target in enumerate(job.targets):
        if not target or len(target) > 255 or any(c.isspace() or c == "\0" for c in target):
            raise bad(f"targets[{index}]", "must be a server name or label selector", target)

    tz = _check_timezone(job.timezone, bad)
    if job.cron is not None and job.at is not None:
        raise bad("at", "give cron or at, not both", job.at)
    if job.cron is not None:
        try:
            cron.parse(job.cron)
        except InvalidSchedule as exc:
            raise bad("cron", exc.why, job.cron) from None
    if job.at is not None:
        try:
            # Without a zone of its own the job uses the agent's; UTC suffices to check syntax.
            cron.parse_at(job.at, tz or ZoneInfo("UTC"))
        except InvalidSchedule as exc:
            raise bad("at", exc.why, job.at) from None

    if job.timeout_s is not None:
        _check_number(job.timeout_s, "timeout_s", bad, above=0.0)
    _check_number(job.kill_grace_s, "kill_grace_s", bad, low=0.0, high=_MAX_GRACE_S)
    _check_number(job.misfire_grace_s, "misfire_grace_s", bad, low=0.0)
    _check_retry(job.retry, bad)
    if job.alerts is not None:
        _check_alerts(job.alerts, bad)
    if not MIN_LOG_BYTES <= job.max_log_bytes <= MAX_LOG_BYTES:
        raise bad(
            "max_log_bytes",
            f"must be between {MIN_LOG_BYTES} and {MAX_LOG_BYTES}",
            job.max_log_bytes,
        )

    for key, value in job.env.items():
        _check_text(value, f"env.{key}", _MAX_COMMAND, bad)
    # Raises InvalidJob(field="env.<NAME>") itself (DESIGN.md: LD_*, BASH_ENV, ... refused).
    check_env_names(dict(job.env), where=where)
    _check_parameters(job.parameters, bad)

    for field in ("user", "group"):
        account = getattr(job, field)
        if account is not None and not _ACCOUNT.match(account):
            raise bad(field, "must be a user/group name or a numeric id", account)
    if job.working_dir is not None and (
        not job.working_dir.startswith("/") or "\0" in job.working_dir
    ):
        raise bad("working_dir", "must be an absolute path", job.working_dir)
    for key, value in job.labels.items():
        if not _LABEL_KEY.match(key):
            raise bad(
                f"labels.{key}",
                "label names are letters, digits, '.', '_', '/' or '-', at most 63 characters",
                key,
            )
        _check_text(value, f"labels.{key}", _MAX_TEXT, bad)


_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _check_alerts(policy: AlertPolicy, bad: _Bad) -> None:
    # Channel names are checked against agentd.toml when the agent routes an alert: a job
    # file may name a channel that another agent of the fleet defines.
    for name in policy.channels or ():
        if not _CHANNEL_NAME.match(name):
            raise bad("alerts.channels", "channel names are letters, digits, '.', '_', '-'", name)
    if policy.long_running_s is not None:
        _check_number(policy.long_running_s, "alerts.long_running_s", bad, above=0.0)
    if policy.long_running_factor is not None:
        _check_number(policy.long_running_factor, "alerts.long_running_factor", bad, above=1.0)
    for address in policy.email_to:
        if "@" not in address or any(c.isspace() or c in "<>,;" for c in address):
            raise bad("alerts.email_to", "must be plain e-mail addresses (user@host)", address)


def _check_text(value: str, field: str, limit: int, bad: _Bad) -> None:
    if "\0" in value:
        raise bad(field, "must not contain a NUL character")
    if len(value) > limit:
        raise bad(field, f"is {len(value)} characters long; the limit is {limit}")


def _check_number(
    value: float,
    field: str,
    bad: _Bad,
    *,
    above: float | None = None,
    low: float | None = None,
    high: float | None = None,
) -> None:
    if not math.isfinite(value):
        raise bad(field, "must be a finite number", value)
    if above is not None and not value > above:
        raise bad(field, f"must be greater than {above:g}", value)
    if low is not None and value < low:
        raise bad(field, f"must be at least {low:g}", value)
    if high is not None and value > high:
        raise bad(field, f"must be at most {high:g}", value)


def _check_timezone(name: str | None, bad: _Bad) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        # Reads the tz database: the one lookup shared/ allows itself (see docs/jobs.md).
        return cron.load_zone(name)
    except cron.InvalidTimezone:
        raise bad(
            "timezone", "unknown time zone; use an IANA name such as Europe/Paris", name
        ) from None


def _check_retry(retry: RetryPolicy, bad: _Bad) -> None:
    if not 0 <= retry.count <= _MAX_RETRIES:
        raise bad("retry.count", f"must be between 0 and {_MAX_RETRIES}", retry.count)
    _check_number(retry.delay_s, "retry.delay_s", bad, low=0.0)
    _check_number(retry.max_delay_s, "retry.max_delay_s", bad, low=0.0)
    if retry.max_delay_s < retry.delay_s:
        raise bad(
            "retry.max_delay_s",
            f"must be at least retry.delay_s ({retry.delay_s:g})",
            retry.max_delay_s,
        )
    _check_number(retry.jitter, "retry.jitter", bad, low=0.0, high=1.0)


def _check_parameters(parameters: Sequence[Parameter], bad: _Bad) -> None:
    seen: set[str] = set()
    for index, param in enumerate(parameters):
        at = f"parameters[{index}]"
        if not _PARAM_NAME.match(param.name):
            raise bad(
                f"{at}.name",
                "must be letters, digits and '_', not starting with a digit (it becomes "
                "the environment variable SQU_PARAM_<NAME>)",
                param.name,
            )
        if param.name.upper() in seen:
            raise bad(f"{at}.name", "is defined twice (names are case-insensitive)", param.name)
        seen.add(param.name.upper())
        at = f"parameters.{param.name}"
        if param.type not in _PARAM_TYPES:
            raise bad(f"{at}.type", f"valid: {', '.join(_PARAM_TYPES)}", param.type)
        if param.type == "choice" and not param.choices:
            raise bad(f"{at}.choices", "a choice parameter needs a non-empty list of choices")
        if param.type != "choice" and param.choices:
            raise bad(
                f"{at}.choices", f"only a choice parameter takes choices (type is {param.type})"
            )
        if param.required and param.default is not None:
            raise bad(f"{at}.default", "a required parameter takes no default", param.default)
        if param.default is not None:
            if param.type in ("str", "choice") and not isinstance(param.default, str):
                raise bad(
                    f"{at}.default", f"expected a string for type {param.type}", param.default
                )
            if param.type == "bool" and not isinstance(param.default, bool):
                raise bad(f"{at}.default", "expected true or false", param.default)
            if param.type in ("int", "float") and isinstance(param.default, bool):
                raise bad(
                    f"{at}.default", f"expected a number for type {param.type}", param.default
                )
            try:
                _coerce(param, _as_text(param.default))
            except ValueError as exc:
                raise bad(f"{at}.default", str(exc), param.default) from None
        _check_text(param.description, f"{at}.description", _MAX_TEXT, bad)


# --------------------------------------------------------------------------- parameters


def _as_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(param: Parameter, text: str) -> str:
    """The canonical text of ``text`` for ``param``'s type; ValueError says why not."""
    if "\0" in text:
        raise ValueError("must not contain a NUL character")
    if len(text) > _MAX_COMMAND:
        raise ValueError(f"is longer than {_MAX_COMMAND} characters")
    if param.type == "int":
        try:
            return str(int(text.strip(), 10))
        except ValueError:
            raise ValueError("expected an integer") from None
    if param.type == "float":
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return repr(number)
    if param.type == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
        raise ValueError("expected true or false")
    if param.type == "choice" and text not in param.choices:
        raise ValueError(f"valid: {', '.join(param.choices)}")
    return text


def parse_params(job: Job, overrides: Mapping[str, str]) -> dict[str, str]:
    """Validate a manual trigger's parameter values against ``job``'s typed parameters.

    Call before creating the execution. Returns every parameter that has a value
    (override, else default) as canonical text, ready to become
    ``SQU_PARAM_<NAME>`` in the process environment. Raises ``InvalidParameter``
    naming the parameter for an unknown name, a bad value or a missing required one.
    """
    by_name = {p.name: p for p in job.parameters}
    for name in overrides:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise InvalidParameter(job.name, name, f"no such parameter (known: {known})")
    values: dict[str, str] = {}
    for param in job.parameters:
        raw = overrides.get(param.name)
        if raw is None:
            if param.required:
                raise InvalidParameter(job.name, param.name, "is required")
            if param.default is None:
                continue
            raw = _as_text(param.default)
        if not isinstance(raw, str):
            raise InvalidParameter(job.name, param.name, "expected a string value", repr(raw))
        try:
            values[param.name] = _coerce(param, raw)
        except ValueError as exc:
            raise InvalidParameter(job.name, param.name, str(exc), raw) from None
    return values


# --------------------------------------------------------------------------- hashing


def definition_hash(job: Job) -> str:
    """sha256 hex of the job's canonical JSON (every field, keys sorted).

    Approvals sign this hash, and reloads compare it to tell a changed job from
    an unchanged one. Adding a field to ``Job`` changes every hash once.
    """
    return hashlib.sha256(msgspec.json.encode(job, order="sorted")).hexdigest()


# --------------------------------------------------------------------------- TOML files

_TOP_LEVEL = ("defaults", "job")
_TOML_POS = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def parse_jobs_toml(text: str, *, where: str) -> list[Job]:
    """Parse one jobs file's text: ``[defaults]`` plus one ``[job.<name>]`` table per job.

    ``where`` is the file as it should appear in errors ("jobs.d/backup.toml").
    Every key of ``[defaults]`` applies to every job unless the job sets it
    (tables such as ``env`` and ``retry`` are merged key by key). Raises
    ``InvalidJobFile`` listing every problem (with line numbers where known):
    the file is used whole or not at all.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.match(str(exc))
        if match is None:
            raise InvalidJobFile(where, [f"{where}: TOML syntax error: {exc}"]) from None
        line, col = match.group("line"), match.group("col")
        raise InvalidJobFile(
            where, [f"{where}:{line}:{col}: TOML syntax error: {match.group('msg')}"]
        ) from None

    index = TomlIndex(text)  # line numbers, computed only if there is an error to place
    problems: list[str] = []
    for key in doc:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(key, _TOP_LEVEL, n=1)
            hint = f"did you mean [{close[0]}]?" if close else "use [defaults] and [job.<name>]"
            problems.append(f"{_at(where, index, (key,))}: unknown top-level key {key!r}; {hint}")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{_at(where, index, ('defaults',))}: defaults must be a table")
        defaults = {}
    elif "name" in defaults:
        problems.append(f"{_at(where, index, ('defaults', 'name'))}: defaults cannot set a name")
    tables = doc.get("job", {})
    if not isinstance(tables, dict):
        problems.append(
            f"{_at(where, index, ('job',))}: job must be a table of [job.<name>] tables"
        )
        tables = {}

    jobs: list[Job] = []
    for name, table in tables.items():
        place = f"{where} [job.{_toml_key(name)}]"
        if not isinstance(table, dict):
            problems.append(
                f"{_at(where, index, ('job', name))} [job.{_toml_key(name)}]: "
                f"expected a table, got {_kind(table)}"
            )
            continue
        if "name" in table and table["name"] != name:
            problems.append(
                f"{_at(where, index, ('job', name, 'name'))} [job.{_toml_key(name)}]: name: "
                f"the table's name is the job's name; remove name (got {table['name']!r})"
            )
            continue
        merged = _merge(defaults, table)
        merged["name"] = name
        try:
            jobs.append(parse_job(merged, where=place))
        except InvalidJob as exc:
            problems.append(_relocate(exc, place, where, index, name, table, defaults))
    if problems:
        raise InvalidJobFile(where, problems)
    return jobs


def _relocate(
    exc: InvalidJob,
    place: str,
    where: str,
    index: TomlIndex,
    name: str,
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> str:
    """The error's message with the most precise place: the key's line, or [defaults]."""
    top = re.split(r"[.\[]", exc.field, maxsplit=1)[0]
    if top not in table and top in defaults:
        better = f"{_at(where, index, ('defaults', top))} [defaults] (for job {name!r})"
    else:
        better = f"{_at(where, index, ('job', name, top))} [job.{_toml_key(name)}]"
    return better + exc.message[len(place) :] if exc.message.startswith(place) else exc.message


def _at(where: str, index: TomlIndex, path: tuple[str, ...]) -> str:
    line = index.locate(path)
    return f"{where}:{line}" if line is not None else where


def _merge(defaults: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` over ``defaults``, merging nested tables key by key."""
    merged = dict(defaults)
    for key, value in table.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge(base, value)
        else:
            merged[key] = value
    return merged


def job_to_toml(job: Job) -> str:
    """One ``[job.<name>]`` table holding the fields that differ from their defaults."""
    return _job_lines(job)


def jobs_to_toml(
    jobs: Iterable[Job],
    *,
    header: Sequence[str] = (),
    comments: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A whole jobs file: ``header`` comment lines, then each job with its own comments.

    ``parse_jobs_toml`` of the result gives back the same jobs.
    """
    out = [_comment(line) for line in header]
    for job in jobs:
        if out:
            out.append("")
        out.extend(_comment(line) for line in (comments or {}).get(job.name, ()))
        out.append(_job_lines(job).rstrip("\n"))
    return "\n".join(out) + "\n"


_COMMENT_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _comment(line: str) -> str:
    # TOML forbids control characters in comments; crontab lines may hold anything.
    return f"# {_COMMENT_UNSAFE.sub(chr(0xFFFD), line)}".rstrip()


_DEFAULT_JOB = Job(name="x")
# What a reader looks for first: what runs, when, where, as whom; then the policies.
_FIRST = ("description", "command", "script", "interpreter", "cron", "at", "timezone")
_WRITE_ORDER = _FIRST + tuple(f for f in Job.__struct_fields__ if f not in _FIRST)
_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_PARAM = Parameter(name="x")
_DEFAULT_ALERTS = AlertPolicy()


def _job_lines(job: Job) -> str:
    table = f"job.{_toml_key(job.name)}"
    lines = [f"[{table}]"]
    nested: list[str] = []
    for field in _WRITE_ORDER:
        value = getattr(job, field)
        if field == "name" or value == getattr(_DEFAULT_JOB, field):
            continue
        if field == "retry":
            nested.append(f"\n[{table}.retry]")
            nested.extend(_changed_fields(value, _DEFAULT_RETRY))
        elif field == "alerts":
            nested.append(f"\n[{table}.alerts]")
            nested.extend(_changed_fields(value, _DEFAULT_ALERTS))
        elif field in ("env", "labels"):
            nested.append(f"\n[{table}.{field}]")
            nested.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        elif field == "parameters":
            for param in value:
                nested.append(f"\n[[{table}.parameters]]")
                nested.append(f"name = {_toml_value(param.name)}")
                nested.extend(_changed_fields(param, _DEFAULT_PARAM, skip=("name",)))
        else:
            lines.append(f"{field} = {_toml_value(value)}")
    return "\n".join(lines + nested) + "\n"


def _changed_fields(
    record: msgspec.Struct, default: msgspec.Struct, skip: Sequence[str] = ()
) -> list[str]:
    return [
        f"{field} = {_toml_value(getattr(record, field))}"
        for field in record.__struct_fields__
        if field not in skip and getattr(record, field) != getattr(default, field)
    ]


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _toml_string(text: str) -> str:
    """A TOML string; multi-line text becomes a readable ''' literal when it can."""
    if (
        "\n" in text
        and "'''" not in text
        and not text.endswith("'")
        and "\r" not in text
        and not any((ord(c) < 0x20 and c not in "\n\t") or c == "\x7f" for c in text)
    ):
        # The newline right after the opening ''' is trimmed by TOML readers.
        return "'''\n" + text + "'''"
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
