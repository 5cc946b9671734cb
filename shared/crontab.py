"""Crontab text -> jobs, plus every line that could not be converted and why.

Call :func:`import_crontab` with the text of a user crontab (``crontab -l``)
or a system one (``/etc/crontab``, ``/etc/cron.d/*``: a user column after the
five time fields). It reads what crontab(5) allows (Debian/Vixie cron and
cronie):

* comments and blank lines;
* ``NAME = value`` environment lines, each applying to the entries below it
  (quotes around the value are removed), with special meaning for
  ``CRON_TZ`` (the job's timezone), ``SHELL`` (the job's interpreter) and
  ``MAILTO``/``MAILFROM`` (kept as labels ``mailto``/``mailfrom`` for
  alerting), and ``HOME`` (also the job's working directory, as cron runs
  commands in ``$HOME``); env names a job may not set (``shared.envrules``) are reported;
* five time fields or an ``@`` macro (``@reboot``, ``@daily``, ...);
* ``%`` in a command: the text after the first unescaped ``%`` is fed to the
  command's standard input with every further ``%`` as a newline, and ``\\%``
  is a literal ``%`` (crontab(5)); cron ends the text with a newline if it
  does not end with one. Jobs run with stdin at /dev/null, so the
  converted command pipes that exact text in: ``printf '%s' '<text>' | {
  <command>; }`` (see ``docs/jobs.md``).

Conversion keeps cron's behaviour: overlapping runs allowed
(``concurrency = "allow"``), no catch-up after downtime (``misfire =
"skip"``), no timeout, no retries. Names are slugs made from the command.
Every produced job has passed ``shared.jobs.parse_job``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared import cron
from shared.envrules import env_name_problem
from shared.errors import InvalidJob
from shared.jobs import jobs_to_toml, parse_job
from shared.models import Job

__all__ = ["CrontabImport", "Problem", "import_crontab"]

_MACROS = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# NAME = value; the name may be quoted; spaces around '=' are allowed (crontab(5)).
_ENV = re.compile(
    r"""^\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s="']+))\s*=(?P<value>.*)$"""
)
_FIELDS5 = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$")
_WORD = re.compile(r"^\s*(\S+)(?:\s+(.*))?$")
# Programs that say little about a job by themselves: the next argument names it better.
_GENERIC = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "python",
        "python3",
        "perl",
        "php",
        "ruby",
        "node",
        "run-parts",
        "test",
        "[",
        "exec",
        "command",
        "cd",
    }
)
# Wrappers whose first non-option argument is the real program.
_WRAPPERS = frozenset(
    {"nice", "ionice", "nohup", "chronic", "env", "sudo", "timeout", "flock", "setsid",
     "time", "cronic", "/usr/bin/env"}
)  # fmt: skip


class Problem(NamedTuple):
    """A crontab line that was not converted (or only partly), and why."""

    lineno: int
    line: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CrontabImport:
    """The jobs a crontab becomes, what could not be converted, and how each job was made."""

    jobs: list[Job] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # job name -> comment lines saying where it came from and any conversion made
    notes: dict[str, list[str]] = field(default_factory=dict)

    def to_toml(self, *, source: str = "crontab") -> str:
        """The jobs as a ``jobs.d`` file, each preceded by its original line as a comment."""
        header = [
            f"Imported from {source} by squ-agentd import-crontab.",
            "Kept cron's behaviour: concurrency = allow (runs may overlap), misfire = skip",
            "(no catch-up after downtime), no timeout, no retries. Review before use.",
        ]
        if self.problems:
            header.append(f"{len(self.problems)} line(s) were not converted:")
            header.extend(f"  line {p.lineno}: {p.why}" for p in self.problems)
        return jobs_to_toml(self.jobs, header=header, comments=self.notes)


def import_crontab(text: str, *, system: bool, user: str | None = None) -> CrontabImport:
    """Convert crontab ``text``; ``system`` when lines carry a user column (/etc/crontab).

    ``user`` sets the run-as user of every job of a user crontab (whose owner
    the text does not say). Never raises on bad input: each line that cannot be
    converted becomes a ``Problem`` with its line number.
    """
    state = _State(user=user)
    result = CrontabImport()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        env = _ENV.match(line)
        if env is not None:
            name = env.group("dq") if env.group("dq") is not None else env.group("sq")
            name = name if name is not None else env.group("bare")
            why = state.set_env(name, _unquote(env.group("value").strip()))
            if why is not None:
                result.problems.append(Problem(lineno, line, why))
            continue
        made = _entry(line, lineno, system=system, state=state, taken=state.names)
        if isinstance(made, Problem):
            result.problems.append(made)
            continue
        job, notes = made
        state.names.add(job.name)
        result.jobs.append(job)
        result.notes[job.name] = notes
    return result


@dataclass(slots=True)
class _State:
    """What the lines so far set for the entries below them."""

    user: str | None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    shell: str | None = None
    names: set[str] = field(default_factory=set)

    def set_env(self, name: str, value: str) -> str | None:
        """Apply one environment line; the reason it was not converted, or None."""
        if name == "CRON_TZ":
            try:
                cron.load_zone(value)
            except cron.InvalidTimezone:
                return f"CRON_TZ: unknown time zone {value!r}; later lines keep the previous zone"
            self.timezone = value
            return None
        if name in ("MAILTO", "MAILFROM"):
            # Kept for the alerts feature; squ-cron itself does not send cron-style mail.
            self.labels[name.lower()] = value
            return None
        if name == "SHELL":
            if not value.startswith("/"):
                return f"SHELL: {value!r} is not an absolute path; later lines keep /bin/sh"
            self.shell = value
            return None
        if name in ("RANDOM_DELAY", "CRON_CORRECT"):
            return f"{name} (cronie) is not supported: jobs run at their exact times"
        problem = env_name_problem(name)
        if problem is not None:
            return f"{name}: {problem}; not set for the jobs below"
        self.env[name] = value
        return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _entry(
    line: str, lineno: int, *, system: bool, state: _State, taken: set[str]
) -> tuple[Job, list[str]] | Problem:
    """One schedule line -> a job and its notes, or the Problem that stops it."""
    notes = [f"crontab line {lineno}: {line.strip()}"]
    body = line.lstrip()
    if body.startswith("-"):
        # cronie: a leading '-' only turns off syslog logging of the run.
        body = body[1:]
        notes.append("the leading '-' (cronie: do not log) was dropped")
    if body.startswith("@"):
        match = _WORD.match(body)
        assert match is not None  # body is not blank
        expr, rest = match.group(1), match.group(2) or ""
        if expr.lower() not in _MACROS:
            return Problem(
                lineno, line, f"unknown macro {expr!r}; valid: {', '.join(sorted(_MACROS))}"
            )
        expr = expr.lower()
    else:
        fields = _FIELDS5.match(body)
        if fields is None:
            return Problem(lineno, line, "expected five time fields and a command")
        expr = " ".join(fields.groups()[:5])
        rest = fields.group(6) or ""
    user = state.user
    if system:
        word = _WORD.match(rest)
        if word is None:
            return Problem(lineno, line, "expected a user after the time fields (system crontab)")
        user, rest = word.group(1), word.group(2) or ""
    if not rest.strip():
        return Problem(lineno, line, "no command after the schedule")

    command, stdin = _split_percent(rest)
    name = _unique_name(_slug(command), taken)
    if stdin is not None:
        command = _feed_stdin(command, stdin)
        notes.append(
            "'%' in the command: the text after it is piped to the command's stdin "
            "with printf, as cron feeds it"
        )
    if expr == "@reboot":
        notes.append("@reboot: runs once when the agent starts after a boot")

    data: dict[str, Any] = {
        "name": name,
        "command": command,
        "cron": expr,
        "description": f"imported from crontab line {lineno}",
        "concurrency": "allow",
        "misfire": "skip",
    }
    if state.timezone is not None:
        data["timezone"] = state.timezone
    if state.shell is not None:
        data["interpreter"] = state.shell
    if state.env:
        data["env"] = dict(state.env)
        home = state.env.get("HOME", "")
        if home.startswith("/"):
            # cron runs the command in $HOME as the crontab sets it (do_command.c: chdir).
            data["working_dir"] = home
    if state.labels:
        data["labels"] = dict(state.labels)
    if user is not None:
        data["user"] = user
    try:
        job = parse_job(data, where=f"line {lineno}")
    except InvalidJob as exc:
        return Problem(lineno, line, f"{exc.field}: {exc.why}")
    return job, notes


def _split_percent(text: str) -> tuple[str, str | None]:
    """crontab(5)'s ``%``: (command, stdin text or None), byte for byte as cron does it.

    In the command part ``\\%`` becomes ``%``; other backslashes stay. In the
    stdin part every ``%`` becomes a newline, ``\\%`` a ``%``, and a backslash
    before anything else stays.
    """
    # Mirrors cron's do_command.c: a backslash escapes the next character and only an
    # escaped % loses its backslash, so a doubled backslash before % keeps both and the
    # % still starts stdin.
    command: list[str] = []
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            if char == "%":
                command[-1] = "%"
            else:
                command.append(char)
            escaped = False
        elif char == "\\":
            command.append(char)
            escaped = True
        elif char == "%":
            return "".join(command), _stdin_text(text[index + 1 :])
        else:
            command.append(char)
    return "".join(command), None


def _stdin_text(text: str) -> str:
    """The bytes cron writes to the command's stdin for the text after the first ``%``.

    Mirrors (ISC/Vixie) cron's do_command.c: ``%`` -> newline, ``\\%`` -> ``%``,
    ``\\x`` stays ``\\x``; and "if some characters were written and the last one
    wasn't a newline, write a newline".
    """
    out: list[str] = []
    escaped = False
    need_newline = False
    for char in text:
        if escaped:
            if char != "%":
                out.append("\\")
        elif char == "%":
            char = "\n"
        escaped = char == "\\"
        if not escaped:
            out.append(char)
            need_newline = char != "\n"
    if escaped:
        out.append("\\")
    if need_newline:
        out.append("\n")
    return "".join(out)


def _feed_stdin(command: str, stdin: str) -> str:
    """A shell command that gives ``command`` exactly ``stdin`` on its standard input."""
    # The newline before '}' keeps a trailing '# comment' in the command from eating the brace.
    return f"printf '%s' {shlex.quote(stdin)} | {{\n{command}\n}}"


def _slug(command: str) -> str:
    """A readable job name from a command: the program, plus its target if generic."""
    segment = re.split(r"&&|\|\||;", command)[-1].split("|")[0]
    try:
        words = shlex.split(segment)
    except ValueError:
        words = segment.split()
    words = [w.strip("()") for w in words if w.strip("()")]
    picked: list[str] = []
    for word in words:
        if "=" in word and not word.startswith(("/", "-")) and not picked:
            continue  # VAR=value before the program
        if word.startswith("-") or word in ("<", ">", "2>&1", ">>"):
            continue
        base = word.rstrip("/").rsplit("/", 1)[-1]
        if not picked and (base in _WRAPPERS or base.isdigit()):
            continue
        picked.append(base)
        if base not in _GENERIC or len(picked) == 2:
            break
    slug = re.sub(r"[^a-z0-9_.-]+", "-", "-".join(picked).lower()).strip("-._")
    return slug[:40].rstrip("-._") or "job"


def _unique_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
