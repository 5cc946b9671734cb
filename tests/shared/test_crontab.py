"""Crontab import: user and system formats, env lines, CRON_TZ, %, macros, bad lines."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.crontab import Problem, _split_percent, import_crontab
from shared.enums import Concurrency, Misfire
from shared.jobs import parse_jobs_toml

USER_CRONTAB = """\
# m h  dom mon dow   command
SHELL=/bin/bash
PATH = /usr/local/bin:/usr/bin:/bin
MAILTO="ops@example.com"

*/5 * * * * /usr/local/bin/check-disk.sh >/dev/null 2>&1
CRON_TZ=Europe/Paris
0 3 * * 1-5 cd /srv/app && ./backup.sh --full   # nightly
@daily /usr/bin/find /tmp -mtime +7 -delete
0 9 * * * mail -s "report" ops%Hello,%%50\\% done%
LD_PRELOAD=/tmp/evil.so
61 * * * * /bin/true
@every 5m /bin/true
0 0 *
30 2 1 jan,jul * /usr/local/bin/rotate
@reboot /usr/local/bin/warmup
CRON_TZ=Nowhere/Special
15 * * * * /usr/local/bin/check-disk.sh
"""

SYSTEM_CRONTAB = """\
# /etc/crontab: system-wide crontab
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly
25 6\t* * *\troot\ttest -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )
0 4 * * * postgres pg_dumpall > /srv/dump.sql
0 5 * * *
*/10 * * * * www-data
@hourly bad:user /bin/true
"""


@pytest.fixture(scope="module")
def user_import():
    return import_crontab(USER_CRONTAB, system=False)


@pytest.fixture(scope="module")
def system_import():
    return import_crontab(SYSTEM_CRONTAB, system=True)


def test_user_crontab_jobs_and_names(user_import) -> None:
    """Every convertible entry becomes a job named after its program, names unique."""
    assert [(j.name, j.cron) for j in user_import.jobs] == [
        ("check-disk.sh", "*/5 * * * *"),
        ("backup.sh", "0 3 * * 1-5"),
        ("find", "@daily"),
        ("mail", "0 9 * * *"),
        ("rotate", "30 2 1 jan,jul *"),
        ("warmup", "@reboot"),
        ("check-disk.sh-2", "15 * * * *"),
    ]


def test_bad_lines_are_reported_with_line_numbers(user_import) -> None:
    """Each line not converted is listed with its number, text and why."""
    assert [(p.lineno, p.line) for p in user_import.problems] == [
        (11, "LD_PRELOAD=/tmp/evil.so"),
        (12, "61 * * * * /bin/true"),
        (13, "@every 5m /bin/true"),
        (14, "0 0 *"),
        (17, "CRON_TZ=Nowhere/Special"),
    ]
    why = {p.lineno: p.why for p in user_import.problems}
    assert "LD_PRELOAD" in why[11]
    assert why[12].startswith("cron: ") and "0-59" in why[12]
    assert "unknown macro '@every'" in why[13]
    assert why[14] == "expected five time fields and a command"
    assert "unknown time zone 'Nowhere/Special'" in why[17]


def test_env_lines_apply_to_the_entries_below(user_import) -> None:
    """PATH set above the first entry reaches every job; SHELL becomes the interpreter."""
    for job in user_import.jobs:
        assert job.env == {"PATH": "/usr/local/bin:/usr/bin:/bin"}
        assert job.interpreter == "/bin/bash"


def test_mailto_is_kept_as_a_label(user_import) -> None:
    """MAILTO (quotes removed) is recorded in the labels for alerting."""
    assert user_import.jobs[0].labels == {"mailto": "ops@example.com"}


def test_cron_tz_sets_the_zone_of_later_entries(user_import) -> None:
    """CRON_TZ applies to the lines after it; an unknown zone keeps the previous one."""
    zones = [j.timezone for j in user_import.jobs]
    assert zones == [None, "Europe/Paris", "Europe/Paris", "Europe/Paris", "Europe/Paris",
                     "Europe/Paris", "Europe/Paris"]  # fmt: skip


def test_command_keeps_everything_after_the_schedule(user_import) -> None:
    """The command is the rest of the line, '#' included (cron has no trailing comments)."""
    assert user_import.jobs[1].command == "cd /srv/app && ./backup.sh --full   # nightly"


def test_cron_behaviour_is_kept(user_import) -> None:
    """Imported jobs may overlap and do not catch up after downtime, like cron."""
    job = user_import.jobs[0]
    assert (job.concurrency, job.misfire, job.timeout_s, job.retry.count) == (
        Concurrency.ALLOW,
        Misfire.SKIP,
        None,
        0,
    )


def test_user_option_sets_run_as_for_a_user_crontab() -> None:
    """A user crontab's owner, given by the caller, becomes every job's user."""
    result = import_crontab("@daily /bin/true\n", system=False, user="alice")
    assert result.jobs[0].user == "alice"


def test_system_crontab_user_column(system_import) -> None:
    """The system format's user column becomes the job's run-as user."""
    assert [(j.name, j.user) for j in system_import.jobs] == [
        ("run-parts-cron.hourly", "root"),
        ("run-parts-cron.daily", "root"),
        ("pg_dumpall", "postgres"),
    ]
    assert system_import.jobs[1].command == (
        "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )"
    )


def test_system_crontab_bad_lines(system_import) -> None:
    """Missing users, missing commands and bad user names are reported by line."""
    assert [(p.lineno, p.why) for p in system_import.problems] == [
        (8, "expected a user after the time fields (system crontab)"),
        (9, "no command after the schedule"),
        (10, "user: must be a user/group name or a numeric id"),
    ]


def test_user_format_read_as_system_reports_every_line() -> None:
    """A user crontab imported with --system loses the program name to the user column."""
    result = import_crontab("0 3 * * * /usr/bin/backup\n", system=True)
    assert result.jobs == []
    assert result.problems == [
        Problem(1, "0 3 * * * /usr/bin/backup", "no command after the schedule")
    ]


@pytest.mark.parametrize(
    ("text", "command", "stdin"),
    [
        ("cmd", "cmd", None),
        ("date +\\%Y-\\%m-\\%d", "date +%Y-%m-%d", None),
        ("mail x%a%b", "mail x", "a\nb\n"),
        ("mail x%a%%", "mail x", "a\n\n"),
        ("cat%50\\% off", "cat", "50% off\n"),
        ("cat%a\\nb", "cat", "a\\nb\n"),
        ("cat%ends\\", "cat", "ends\\\n"),
        ("cat%", "cat", ""),
        ("echo a\\\\%b", "echo a\\\\", "b\n"),
        ("echo \\\\\\%x", "echo \\\\%x", None),
    ],
)
def test_percent_splits_like_cron(text: str, command: str, stdin: str | None) -> None:
    """crontab(5): first unescaped % starts stdin, later % are newlines, \\% is a %.

    Cases follow cron's do_command.c, including its final newline.
    """
    assert _split_percent(text) == (command, stdin)


def test_percent_command_feeds_stdin_when_run(user_import) -> None:
    """The converted command really gives the program cron's stdin text (run with /bin/sh)."""
    job = next(j for j in user_import.jobs if j.name == "mail")
    script = job.command.replace('mail -s "report" ops', "cat")
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True, timeout=10)
    assert out.stdout == b"Hello,\n\n50% done\n"


def test_stdin_with_quotes_survives_the_shell() -> None:
    """Quotes and $ in stdin text reach the program unchanged."""
    job = import_crontab('@daily cat%it\'s $HOME `x` "q"\n', system=False).jobs[0]
    out = subprocess.run(["/bin/sh", "-c", job.command], capture_output=True, timeout=10)
    assert out.stdout == b'it\'s $HOME `x` "q"\n'


def test_conversion_notes_explain_each_job(user_import) -> None:
    """Each job's notes cite its original line, and say how % and @reboot were converted."""
    notes = user_import.notes
    assert notes["mail"][0].startswith("crontab line 10: 0 9 * * * mail")
    assert any("stdin" in n for n in notes["mail"])
    assert any("@reboot" in n for n in notes["warmup"])


def test_imported_toml_parses_back_to_the_same_jobs(user_import, system_import) -> None:
    """The written jobs.d file parses back into exactly the imported jobs."""
    for result in (user_import, system_import):
        text = result.to_toml(source="crontab")
        assert parse_jobs_toml(text, where="imported.toml") == result.jobs


def test_problems_are_listed_in_the_file_header(user_import) -> None:
    """The written file's header lists the lines that were not converted."""
    text = user_import.to_toml()
    assert "# 5 line(s) were not converted:" in text
    assert "#   line 12: cron: " in text


def test_cronie_dash_prefix_and_quoted_env() -> None:
    """cronie's '-' prefix is dropped with a note; quoted env names and values are unquoted."""
    result = import_crontab("'GREETING' = 'hi there'\n-*/2 * * * * echo $GREETING\n", system=False)
    (job,) = result.jobs
    assert job.env == {"GREETING": "hi there"}
    assert job.cron == "*/2 * * * *"
    assert any("leading '-'" in n for n in result.notes[job.name])


def test_unsupported_cronie_settings_are_reported() -> None:
    """RANDOM_DELAY is reported as not converted rather than silently ignored."""
    result = import_crontab("RANDOM_DELAY=30\n@daily /bin/true\n", system=False)
    assert [(p.lineno, "RANDOM_DELAY" in p.why) for p in result.problems] == [(1, True)]
    assert len(result.jobs) == 1


def test_empty_crontab_gives_nothing() -> None:
    """Comments and blank lines alone give no jobs and no problems."""
    result = import_crontab("# nothing\n\n   \n", system=False)
    assert (result.jobs, result.problems) == ([], [])


def test_control_characters_in_a_line_keep_the_file_valid() -> None:
    """A crontab line with control characters still gives a TOML file that parses."""
    result = import_crontab("@daily echo '\x1b[31mred'\x7f\n", system=False)
    assert parse_jobs_toml(result.to_toml(), where="x.toml") == result.jobs


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("* /-,0123456789@%\\'\"=#\nabcAZ_\t")), max_size=200),
    st.booleans(),
)
def test_any_crontab_text_converts_without_raising(text: str, system: bool) -> None:
    """import_crontab never raises: every line becomes a job, a problem, or is skipped."""
    result = import_crontab(text, system=system)
    assert len({j.name for j in result.jobs}) == len(result.jobs)
    assert all(1 <= p.lineno <= text.count("\n") + 1 for p in result.problems)


def test_home_set_in_the_crontab_is_the_working_dir() -> None:
    """cron runs a command in $HOME, so HOME set by the crontab becomes the working dir too."""
    result = import_crontab("@daily ./a.sh\nHOME=/srv/app\n@daily ./b.sh\n", system=False)
    assert [j.working_dir for j in result.jobs] == [None, "/srv/app"]
    assert result.jobs[1].env == {"HOME": "/srv/app"}
