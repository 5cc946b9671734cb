"""The one door for job definitions: every bad field is named with its value and what is valid."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.enums import Concurrency, RetryOn
from shared.errors import InvalidJob
from shared.jobs import (
    InvalidJobFile,
    InvalidParameter,
    definition_hash,
    job_to_toml,
    jobs_to_toml,
    parse_job,
    parse_jobs_toml,
    parse_params,
)
from shared.models import Job, Parameter, RetryPolicy

WHERE = "jobs.d/t.toml [job.t]"


def job(**fields: Any) -> dict[str, Any]:
    return {"name": "t", "command": "true", "cron": "*/5 * * * *"} | fields


def error_of(data: dict[str, Any]) -> InvalidJob:
    with pytest.raises(InvalidJob) as info:
        parse_job(data, where=WHERE)
    return info.value


def test_minimal_job_parses() -> None:
    """A name, a command and a cron make a job with every other field at its default."""
    parsed = parse_job(job(), where=WHERE)
    assert parsed == Job(name="t", command="true", cron="*/5 * * * *")


def test_full_job_parses() -> None:
    """Every field set to a valid value is accepted as given."""
    data = job(
        interpreter="/bin/bash",
        description="nightly",
        targets=["db1", "role=db"],
        timezone="Europe/Paris",
        timeout_s=60,
        kill_grace_s=5,
        retry={"count": 3, "delay_s": 5, "backoff": "exponential", "on": ["failed"]},
        concurrency="allow",
        misfire="skip",
        misfire_grace_s=60,
        enabled=False,
        approval="manual",
        env={"BACKUP_DIR": "/srv"},
        parameters=[{"name": "level", "type": "choice", "choices": ["full", "incr"]}],
        user="postgres",
        group="backup",
        working_dir="/srv",
        max_log_bytes=1_000_000,
        labels={"team": "dba"},
        idempotent=True,
    )
    parsed = parse_job(data, where=WHERE)
    assert parsed.retry == RetryPolicy(
        count=3, delay_s=5.0, backoff="exponential", on=(RetryOn.FAILED,)
    )
    assert parsed.concurrency is Concurrency.ALLOW
    assert parsed.parameters[0].choices == ("full", "incr")
    assert parsed.timeout_s == 60.0


# (fields to change, field named, text that must appear: the value and what is valid)
BAD_FIELDS = [
    ({"name": "Backup Job"}, "name", ["'Backup Job'", "slug"]),
    ({"name": "-x"}, "name", ["'-x'", "starting with a letter or digit"]),
    ({"name": "a" * 64}, "name", ["at most 63"]),
    ({"command": None}, "command", ["exactly one of command or script"]),
    ({"script": "s@sha256:" + "0" * 64}, "command", ["exactly one of command or script"]),
    ({"command": "   "}, "command", ["must not be empty"]),
    ({"command": "a\0b"}, "command", ["NUL"]),
    ({"command": None, "script": "backup"}, "script", ["'backup'", "<name>@sha256:"]),
    ({"interpreter": "bash"}, "interpreter", ["'bash'", "absolute path"]),
    ({"targets": ["db 1"]}, "targets[0]", ["'db 1'", "server name or label selector"]),
    ({"timezone": "Mars/Olympus"}, "timezone", ["'Mars/Olympus'", "IANA name"]),
    ({"cron": "61 * * * *"}, "cron", ["'61 * * * *'", "0-59"]),
    ({"cron": "* * *"}, "cron", ["'* * *'"]),
    ({"at": "2030-01-01T00:00:00"}, "at", ["cron or at, not both"]),
    ({"cron": None, "at": "next tuesday"}, "at", ["'next tuesday'"]),
    ({"timeout_s": 0}, "timeout_s", ["(got 0.0)", "greater than 0"]),
    ({"timeout_s": -5}, "timeout_s", ["-5", "greater than 0"]),
    ({"timeout_s": float("nan")}, "timeout_s", ["finite"]),
    ({"timeout_s": "5m"}, "timeout_s", ["'5m'", "expected float, got str"]),
    ({"kill_grace_s": 7200}, "kill_grace_s", ["7200", "at most 3600"]),
    ({"misfire_grace_s": -1}, "misfire_grace_s", ["-1", "at least 0"]),
    ({"retry": {"count": 101}}, "retry.count", ["101", "between 0 and 100"]),
    ({"retry": {"count": -1}}, "retry.count", ["-1", "between 0 and 100"]),
    ({"retry": {"count": "3"}}, "retry.count", ["'3'", "expected int, got str"]),
    ({"retry": {"delay_s": -1}}, "retry.delay_s", ["-1", "at least 0"]),
    ({"retry": {"delay_s": 60, "max_delay_s": 10}}, "retry.max_delay_s", ["10", "at least"]),
    ({"retry": {"jitter": 1.5}}, "retry.jitter", ["1.5", "at most 1"]),
    ({"retry": {"backoff": "linear"}}, "retry.backoff", ["'linear'", "fixed, exponential"]),
    ({"retry": {"on": ["crash"]}}, "retry.on[0]", ["'crash'", "failed, timeout"]),
    ({"retry": {"cuont": 1}}, "retry.cuont", ["did you mean 'count'"]),
    ({"retry": 3}, "retry", ["expected object, got int"]),
    ({"concurrency": "parallel"}, "concurrency", ["'parallel'", "allow, forbid, replace"]),
    ({"misfire": "later"}, "misfire", ["'later'", "skip, run_once, run_all"]),
    ({"approval": "yes"}, "approval", ["'yes'", "none, manual, always"]),
    ({"enabled": "yes"}, "enabled", ["'yes'", "expected bool"]),
    ({"max_log_bytes": 10}, "max_log_bytes", ["10", "between 4096 and"]),
    ({"max_log_bytes": 1.5}, "max_log_bytes", ["1.5", "expected int, got float"]),
    ({"env": {"LD_PRELOAD": "/tmp/x.so"}}, "env.LD_PRELOAD", ["may not set"]),
    ({"env": {"PYTHONPATH": "/tmp"}}, "env.PYTHONPATH", ["may not set"]),
    ({"env": {"1X": "a"}}, "env.1X", ["not a valid variable name"]),
    ({"env": {"PORT": 5432}}, "env.PORT", ["5432", "expected a string"]),
    ({"user": "bad user"}, "user", ["'bad user'", "user/group name or a numeric id"]),
    ({"group": "g:x"}, "group", ["'g:x'", "user/group name"]),
    ({"working_dir": "srv"}, "working_dir", ["'srv'", "absolute path"]),
    ({"labels": {"a b": "x"}}, "labels.a b", ["label names"]),
    ({"labels": {"team": 1}}, "labels.team", ["expected a string"]),
    ({"timout_s": 5}, "timout_s", ["did you mean 'timeout_s'"]),
    ({"description": "d" * 5000}, "description", ["5000 characters long", "limit is 4096"]),
    ({"idempotent": 1}, "idempotent", ["(got 1)", "expected bool, got int"]),
    ({"targets": "db1"}, "targets", ["'db1'", "expected array, got str"]),
    ({"parameters": {"name": "p"}}, "parameters", ["expected array, got object"]),
    ({"name": None}, "name", ["expected str, got null"]),
]


@pytest.mark.parametrize(("change", "field", "expected"), BAD_FIELDS, ids=lambda v: str(v)[:40])
def test_bad_field_is_named_with_value_and_valid_range(
    change: dict[str, Any], field: str, expected: list[str]
) -> None:
    """Each bad field's error names the place, the field, the value and what is valid."""
    data = {k: v for k, v in (job() | change).items() if v is not None or k == "name"}
    error = error_of(data)
    assert error.field == field
    assert error.message.startswith(f"{WHERE}: {field}: ")
    for text in expected:
        assert text in error.message


BAD_PARAMETERS = [
    ({"name": "1x"}, "parameters[0].name", "SQU_PARAM_"),
    ({"name": "p", "type": "date"}, "parameters.p.type", "str, int, float, bool, choice"),
    ({"name": "p", "type": "choice"}, "parameters.p.choices", "non-empty list"),
    ({"name": "p", "choices": ["a"]}, "parameters.p.choices", "only a choice parameter"),
    ({"name": "p", "required": True, "default": "x"}, "parameters.p.default", "no default"),
    ({"name": "p", "type": "int", "default": "ten"}, "parameters.p.default", "integer"),
    ({"name": "p", "type": "int", "default": True}, "parameters.p.default", "number"),
    ({"name": "p", "type": "bool", "default": "yes"}, "parameters.p.default", "true or false"),
    (
        {"name": "p", "type": "choice", "choices": ["a"], "default": "b"},
        "parameters.p.default",
        "valid: a",
    ),
    ({"name": "p", "default": [1]}, "parameters[0].default", "expected"),
    ({"name": "p", "colour": "red"}, "parameters[0].colour", "unknown field"),
]


@pytest.mark.parametrize(("param", "field", "expected"), BAD_PARAMETERS, ids=lambda v: str(v)[:40])
def test_bad_parameter_definition_is_named(
    param: dict[str, Any], field: str, expected: str
) -> None:
    """Parameter names, types, choices and defaults must agree; the error names which."""
    error = error_of(job(parameters=[param]))
    assert error.field == field
    assert expected in error.message


def test_duplicate_parameter_names_are_refused() -> None:
    """Two parameters whose environment names collide are refused."""
    error = error_of(job(parameters=[{"name": "level"}, {"name": "LEVEL"}]))
    assert error.field == "parameters[1].name"
    assert "defined twice" in error.message


def test_missing_name_is_required() -> None:
    """A job without a name says the name is required."""
    error = error_of({"command": "true"})
    assert (error.field, error.why) == ("name", "is required")


def test_non_table_is_refused() -> None:
    """Something that is not a table at all gets a clear error, not a traceback."""
    with pytest.raises(InvalidJob, match="expected a table of fields, got an array"):
        parse_job(["name", "t"], where=WHERE)  # type: ignore[arg-type]


def test_toml_datetime_is_accepted_for_at() -> None:
    """An unquoted TOML datetime for at is taken as its ISO text."""
    when = dt.datetime(2030, 1, 2, 3, 4, 5)
    parsed = parse_job(job(cron=None, at=when), where=WHERE)
    assert parsed.at == "2030-01-02T03:04:05"


def test_manual_only_job_is_valid() -> None:
    """A job with neither cron nor at runs only when triggered."""
    parsed = parse_job({"name": "adhoc", "command": "true"}, where=WHERE)
    assert parsed.is_manual_only


# --------------------------------------------------------------------------- hash


def test_definition_hash_is_stable_and_order_free() -> None:
    """The same definition hashes the same whatever the key order of its source."""
    a = parse_job(job(env={"A": "1", "B": "2"}), where=WHERE)
    b = parse_job(dict(reversed(list(job(env={"B": "2", "A": "1"}).items()))), where=WHERE)
    assert definition_hash(a) == definition_hash(b)
    assert len(definition_hash(a)) == 64


def test_definition_hash_changes_with_any_field() -> None:
    """Changing one field changes the hash."""
    a = parse_job(job(), where=WHERE)
    b = parse_job(job(timeout_s=30), where=WHERE)
    assert definition_hash(a) != definition_hash(b)


# --------------------------------------------------------------------------- parameters

PARAMS = (
    Parameter(name="level", type="choice", choices=("full", "incr"), default="incr"),
    Parameter(name="days", type="int", default=7),
    Parameter(name="ratio", type="float"),
    Parameter(name="dry_run", type="bool", default=False),
    Parameter(name="target", required=True),
)
PJOB = Job(name="p", command="true", parameters=PARAMS)


def test_params_fill_defaults_and_canonicalise() -> None:
    """Overrides are canonicalised by type; defaults fill the rest; no default means absent."""
    values = parse_params(PJOB, {"target": "db1", "days": " 30 ", "dry_run": "YES"})
    assert values == {
        "level": "incr",
        "days": "30",
        "dry_run": "true",
        "target": "db1",
    }


@pytest.mark.parametrize(
    ("overrides", "parameter", "why"),
    [
        ({"target": "x", "colour": "red"}, "colour", "no such parameter"),
        ({}, "target", "is required"),
        ({"target": "x", "days": "7.5"}, "days", "expected an integer"),
        ({"target": "x", "ratio": "inf"}, "ratio", "finite"),
        ({"target": "x", "dry_run": "maybe"}, "dry_run", "true or false"),
        ({"target": "x", "level": "half"}, "level", "valid: full, incr"),
        ({"target": "a\0b"}, "target", "NUL"),
    ],
)
def test_bad_param_value_names_the_parameter(
    overrides: dict[str, str], parameter: str, why: str
) -> None:
    """A bad manual-trigger value is refused with the parameter's name and why."""
    with pytest.raises(InvalidParameter) as info:
        parse_params(PJOB, overrides)
    assert info.value.parameter == parameter
    assert why in info.value.message
    assert f"parameter {parameter!r}" in info.value.message


# --------------------------------------------------------------------------- TOML files

FILE = """\
# nightly jobs
[defaults]
timezone = "UTC"
env = { BACKUP_DIR = "/srv/backup" }
retry = { count = 2 }

[job.backup]
command = "/usr/local/bin/backup --full"
cron = "0 3 * * *"
env = { LEVEL = "full" }

[job."rotate.logs"]
command = "logrotate /etc/logrotate.conf"
cron = "@daily"
retry = { delay_s = 30 }
"""


def test_file_jobs_get_defaults_merged_key_by_key() -> None:
    """[defaults] applies to every job; tables such as env and retry merge key by key."""
    backup, rotate = parse_jobs_toml(FILE, where="jobs.d/nightly.toml")
    assert backup.name == "backup"
    assert backup.env == {"BACKUP_DIR": "/srv/backup", "LEVEL": "full"}
    assert rotate.name == "rotate.logs"
    assert rotate.retry == RetryPolicy(count=2, delay_s=30.0)
    assert rotate.timezone == "UTC"


def test_empty_file_holds_no_jobs() -> None:
    """A file with only comments is valid and holds no jobs."""
    assert parse_jobs_toml("# nothing yet\n", where="jobs.d/empty.toml") == []


def test_toml_syntax_error_names_file_and_line() -> None:
    """A TOML syntax error is reported with the file, line and column."""
    text = '[job.a]\ncommand = "true"\ncron = 0 3 * * *\n'
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="jobs.d/a.toml")
    assert info.value.message.startswith("jobs.d/a.toml:3:")
    assert "TOML syntax error" in info.value.message


def test_bad_field_in_file_names_file_line_and_job() -> None:
    """A bad value in a file points at the line of its key and the job's table."""
    text = '[job.a]\ncommand = "true"\n\ncron = "61 * * * *"\n'
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="jobs.d/a.toml")
    (problem,) = info.value.problems
    assert problem.startswith("jobs.d/a.toml:4 [job.a]: cron: ")
    assert problem.endswith("(got '61 * * * *')")


def test_bad_default_is_blamed_on_defaults() -> None:
    """A bad value inherited from [defaults] is reported at [defaults], naming the job."""
    text = '[defaults]\ntimeout_s = -1\n\n[job.a]\ncommand = "true"\n'
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="f.toml")
    assert info.value.problems[0].startswith("f.toml:2 [defaults] (for job 'a'): timeout_s: ")


def test_every_bad_job_in_a_file_is_listed() -> None:
    """All problems of a file are reported at once, not just the first."""
    text = '[job.a]\ncommand = "true"\nretry = {count = 500}\n[job.b]\nscript = "x"\n'
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="f.toml")
    assert len(info.value.problems) == 2
    assert "retry.count" in info.value.problems[0]
    assert "[job.b]" in info.value.problems[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[jobs.a]\ncommand = "true"\n',
            "f.toml:1: unknown top-level key 'jobs'; did you mean [job]?",
        ),
        ('[job.a]\nname = "b"\ncommand = "true"\n', "remove name (got 'b')"),
        ('[defaults]\nname = "x"\n', "defaults cannot set a name"),
        ("job = 3\n", "job must be a table"),
        ("[job]\na = 3\n", "[job.a]: expected a table, got an integer"),
    ],
)
def test_file_layout_errors_are_explained(text: str, expected: str) -> None:
    """Wrong file shapes get an error that says what shape is expected."""
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="f.toml")
    assert expected in info.value.message


# --------------------------------------------------------------------------- writing TOML


def test_written_toml_parses_back_to_the_same_jobs() -> None:
    """jobs_to_toml then parse_jobs_toml gives back the same jobs, every field included."""
    jobs = [
        parse_job(
            job(
                name="weird.name",
                command="printf '%s' 'a\"b\\\\c' | {\ncat\n}\n",
                description='quote " and tab\t and bell \x07',
                retry={"count": 2, "on": ["timeout"], "jitter": 0.5},
                env={"A": "x y", "B": ""},
                labels={"mailto": "ops@example.com", "team/x": "y"},
                parameters=[
                    {"name": "n", "type": "int", "default": 3, "description": "count"},
                    {"name": "c", "type": "choice", "choices": ["a", "b"]},
                ],
                timeout_s=1.5,
                user="root",
            ),
            where=WHERE,
        ),
        parse_job({"name": "plain", "command": "true"}, where=WHERE),
    ]
    text = jobs_to_toml(jobs, header=["imported"], comments={"plain": ["line 3"]})
    assert parse_jobs_toml(text, where="out.toml") == jobs


def test_job_to_toml_writes_only_changed_fields() -> None:
    """A job at its defaults writes just its table header and the fields it sets."""
    text = job_to_toml(Job(name="a", command="true"))
    assert text == '[job.a]\ncommand = "true"\n'


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1).filter(lambda s: "\0" not in s and s.strip()))
def test_any_command_text_round_trips(command: str) -> None:
    """Any command text survives writing and reading TOML unchanged."""
    original = Job(name="a", command=command)
    assert parse_jobs_toml(job_to_toml(original), where="x") == [original]


# --------------------------------------------------------------------------- docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"


def test_docs_example_file_is_valid() -> None:
    """The example jobs file in docs/jobs.md parses as written."""
    text = DOCS.read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    names = [j.name for j in parse_jobs_toml(example, where="docs/jobs.md")]
    assert names == ["backup", "vacuum.weekly", "restore-test"]


def test_docs_list_every_job_field() -> None:
    """docs/jobs.md has a row for every Job and RetryPolicy field."""
    text = DOCS.read_text()
    fields = [f for f in Job.__struct_fields__ if f != "retry"]
    fields += [f"retry.{f}" for f in RetryPolicy.__struct_fields__]
    assert [f for f in fields if f"| `{f}` |" not in text] == []


def test_large_file_with_errors_is_located_in_linear_time() -> None:
    """Regression: line lookup re-scanned the file per job (1000 jobs took about a minute)."""
    text = "".join(
        f'[job.j{i}]\ncommand = "true"\ncron = "{i % 60} * * * *"\n' for i in range(1000)
    )
    text += '[job.bad]\ncommand = "true"\ncron = "61 * * * *"\n'
    started = time.monotonic()
    with pytest.raises(InvalidJobFile) as info:
        parse_jobs_toml(text, where="big.toml")
    assert info.value.problems[0].startswith("big.toml:3003 [job.bad]: cron: ")
    assert time.monotonic() - started < 20


def test_long_bad_value_is_clipped_in_the_error() -> None:
    """A huge bad value is echoed clipped, so one error cannot flood a log or a terminal."""
    error = error_of(job(cron="9" * 10_000))
    assert len(error.message) < 400
    assert "…" in error.message


# --------------------------------------------------------------------------- hostile input

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_CRON_WORDS = ["*", "*/0", "0", "61", "5-1", "jan", "mon", "?", "L", "#", "9" * 20, "\x00", "@x"]


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*Job.__struct_fields__, "bogus"]), _VALUES, max_size=6),
    st.lists(st.sampled_from(_CRON_WORDS), max_size=7).map(" ".join),
)
def test_any_data_gives_a_job_or_invalid_job(data: dict[str, Any], cron: str) -> None:
    """Whatever arrives, parse_job returns a Job or raises InvalidJob: never a traceback."""
    data = {"name": "a", "command": "x", "cron": cron} | data
    try:
        assert isinstance(parse_job(data, where=WHERE), Job)
    except InvalidJob as exc:
        assert exc.message.startswith(WHERE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_jobs_or_invalid_job_file(text: str) -> None:
    """Whatever a file holds, parse_jobs_toml returns jobs or raises InvalidJobFile."""
    try:
        assert isinstance(parse_jobs_toml(text, where="f.toml"), list)
    except InvalidJobFile as exc:
        assert all(p.startswith("f.toml") for p in exc.problems)
