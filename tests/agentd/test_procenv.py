"""Process set-up: the clean environment and run-as user resolution."""

from __future__ import annotations

import os
import pwd

import pytest

from agentd.procenv import (
    PATH_ROOT,
    PATH_USER,
    UnknownGroup,
    UnknownUser,
    build_env,
    param_env_name,
    resolve_user,
)
from shared.errors import InvalidJob
from shared.models import Job, Parameter


def _env(job: Job, **kw) -> dict[str, str]:
    return build_env(job, execution_id="E1", run_id="R1", **kw)


def test_env_is_clean_and_complete():
    """Only the fixed base, the user's identity and SQU_* variables are set."""
    env = _env(Job(name="backup", command="true"), user=resolve_user("nobody"), agent_tz="UTC")
    pw = pwd.getpwnam("nobody")
    assert env == {
        "PATH": PATH_USER,
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": pw.pw_dir,
        "SHELL": pw.pw_shell,
        "USER": "nobody",
        "LOGNAME": "nobody",
        "SQU_EXECUTION_ID": "E1",
        "SQU_RUN_ID": "R1",
        "SQU_JOB": "backup",
        "SQU_RETRY_INDEX": "0",
    }


def test_root_gets_the_sbin_path():
    """A job running as root gets the PATH with sbin directories."""
    assert _env(Job(name="j", command="true"), user=resolve_user("root"))["PATH"] == PATH_ROOT


def test_nothing_is_inherited_from_the_agent(monkeypatch):
    """A variable in the agent's environment does not reach the job."""
    monkeypatch.setenv("SECRET_TOKEN", "x")
    assert "SECRET_TOKEN" not in _env(Job(name="j", command="true"))


def test_job_env_and_job_timezone_apply():
    """The job's env is added and its own time zone wins over the agent's."""
    job = Job(name="j", command="true", env={"FOO": "1", "PATH": "/opt/bin"}, timezone="Asia/Tokyo")
    env = _env(job, agent_tz="UTC")
    assert (env["FOO"], env["PATH"], env["TZ"]) == ("1", "/opt/bin", "Asia/Tokyo")


def test_job_env_cannot_override_user_identity():
    """USER and LOGNAME always name the run-as user."""
    job = Job(name="j", command="true", env={"USER": "root"})
    assert _env(job, user=resolve_user("nobody"))["USER"] == "nobody"


def test_parameters_become_squ_param_variables():
    """Given values and defaults become SQU_PARAM_<NAME>; booleans read true/false."""
    job = Job(
        name="j",
        command="true",
        parameters=(
            Parameter(name="target-host", default="db1"),
            Parameter(name="dry_run", type="bool", default=False),
        ),
    )
    env = _env(job, params={"target-host": "db2"}, retry_index=2)
    assert env["SQU_PARAM_TARGET_HOST"] == "db2"
    assert env["SQU_PARAM_DRY_RUN"] == "false"
    assert env["SQU_RETRY_INDEX"] == "2"


def test_missing_required_parameter_is_named():
    """A required parameter without a value is an InvalidJob naming it."""
    job = Job(name="j", command="true", parameters=(Parameter(name="day", required=True),))
    with pytest.raises(InvalidJob, match=r"parameters\.day"):
        _env(job)


def test_parameter_value_with_nul_is_refused():
    """A NUL byte cannot be passed through the environment, so it is refused by name."""
    with pytest.raises(InvalidJob, match="SQU_PARAM_X"):
        _env(Job(name="j", command="true"), params={"x": "a\0b"})


def test_refused_env_name_in_job_is_an_error():
    """A loader variable in the job's env is refused with the name in the message."""
    with pytest.raises(InvalidJob, match="LD_PRELOAD"):
        _env(Job(name="j", command="true", env={"LD_PRELOAD": "/tmp/x.so"}))


def test_user_alone_gets_its_own_groups_not_roots():
    """user= alone yields the user's primary gid and its own group list."""
    pw = pwd.getpwnam("nobody")
    info = resolve_user("nobody")
    assert (info.uid, info.gid) == (pw.pw_uid, pw.pw_gid)
    assert set(info.groups) == set(os.getgrouplist("nobody", pw.pw_gid))
    assert 0 not in info.groups or pw.pw_gid == 0


def test_user_and_group_sets_the_primary_gid():
    """With a group, it becomes the primary gid and is among the groups."""
    info = resolve_user("nobody", "daemon")
    import grp

    gid = grp.getgrnam("daemon").gr_gid
    assert info.gid == gid and gid in info.groups


def test_numeric_user_is_accepted():
    """A numeric uid resolves to that user."""
    assert resolve_user(str(pwd.getpwnam("nobody").pw_uid)).name == "nobody"


def test_unknown_user_is_named():
    """An unknown user is an UnknownUser error naming it."""
    with pytest.raises(UnknownUser, match="no user 'no-such-user'"):
        resolve_user("no-such-user")


def test_unknown_group_is_named():
    """An unknown group is an UnknownGroup error naming it."""
    with pytest.raises(UnknownGroup, match="no-such-group"):
        resolve_user("nobody", "no-such-group")


def test_no_user_keeps_the_agents_identity():
    """Without user or group, the job runs as the agent's own user."""
    info = resolve_user(None, None)
    assert info.uid == os.getuid()


def test_param_env_name_is_safe():
    """Parameter names map to upper-case identifiers."""
    assert param_env_name("a.b-c") == "SQU_PARAM_A_B_C"
