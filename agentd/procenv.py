"""A job's process set-up: its clean environment and the user it runs as.

DESIGN.md: a clean environment (fixed PATH, HOME/USER/LOGNAME/SHELL of the
run-as user, LANG, TZ, the job's env, ``SQU_*`` variables); env names that
change loaders or shells are refused; run-as sets uid, gid *and* supplementary
groups. Python's ``subprocess`` with ``user=`` alone keeps the caller's (root's)
supplementary groups, which would hand a job root's group memberships, so
``resolve_user`` always yields the user's own group list.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.envrules import check_env_names
from shared.errors import InvalidJob, SquError
from shared.models import Job

__all__ = [
    "PATH_ROOT",
    "PATH_USER",
    "UnknownGroup",
    "UnknownUser",
    "UserInfo",
    "build_env",
    "param_env_name",
    "resolve_user",
]

PATH_ROOT = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PATH_USER = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_LANG = "C.UTF-8"


class UnknownUser(SquError):
    code = "unknown_user"

    def __init__(self, user: str) -> None:
        super().__init__(f"no user {user!r} on this server (run-as user of the job)", user=user)


class UnknownGroup(SquError):
    code = "unknown_group"

    def __init__(self, group: str) -> None:
        super().__init__(
            f"no group {group!r} on this server (run-as group of the job)", group=group
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """Who a job runs as: everything the spawn and the environment need."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str


def _lookup_user(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    if user.isdigit():
        try:
            return pwd.getpwuid(int(user))
        except KeyError:
            pass
    raise UnknownUser(user)


def _lookup_gid(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        pass
    if group.isdigit():
        return int(group)  # a numeric gid need not have a name
    raise UnknownGroup(group)


def resolve_user(user: str | None, group: str | None = None) -> UserInfo:
    """The uid, gid and supplementary groups a job with ``user``/``group`` runs with.

    ``user`` alone: the user's primary group and the groups it is a member of
    (``os.getgrouplist``), never root's. ``group`` too: that group as primary gid,
    plus the user's groups. ``group`` alone: the agent's own user with that group
    and no other supplementary group. Neither: the agent's own user unchanged.
    Raises ``UnknownUser`` / ``UnknownGroup`` naming what is missing.
    """
    if user is None:
        pw = pwd.getpwuid(os.getuid())
        if group is None:
            return UserInfo(
                name=pw.pw_name,
                uid=pw.pw_uid,
                gid=os.getgid(),
                groups=tuple(os.getgroups()),
                home=pw.pw_dir,
                shell=pw.pw_shell or "/bin/sh",
            )
        gid = _lookup_gid(group)
        return UserInfo(
            name=pw.pw_name,
            uid=pw.pw_uid,
            gid=gid,
            groups=(gid,),
            home=pw.pw_dir,
            shell=pw.pw_shell or "/bin/sh",
        )
    pw = _lookup_user(user)
    gid = pw.pw_gid if group is None else _lookup_gid(group)
    groups = set(os.getgrouplist(pw.pw_name, pw.pw_gid))
    groups.add(gid)
    return UserInfo(
        name=pw.pw_name,
        uid=pw.pw_uid,
        gid=gid,
        groups=tuple(sorted(groups)),
        home=pw.pw_dir,
        shell=pw.pw_shell or "/bin/sh",
    )


def param_env_name(name: str) -> str:
    """``SQU_PARAM_<NAME>``: upper-cased, anything but letters and digits becomes ``_``."""
    return "SQU_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_env(
    job: Job,
    *,
    execution_id: str,
    run_id: str,
    job_name: str | None = None,
    retry_index: int = 0,
    params: Mapping[str, str] | None = None,
    user: UserInfo | str | None = None,
    agent_tz: str | None = None,
) -> dict[str, str]:
    """The complete environment of one execution of ``job``; nothing is inherited.

    Order: fixed base (PATH, LANG, TZ, HOME, SHELL), then the job's env (which may
    override those), then USER/LOGNAME and the ``SQU_*`` variables, which it may
    not. ``params`` are the execution's values; the job's parameter defaults fill
    the rest. Raises ``InvalidJob`` for a refused env name, a value with a NUL
    byte or a required parameter without a value.
    """
    info = user if isinstance(user, UserInfo) else resolve_user(user, None)
    check_env_names(dict(job.env), where=f"job {job.name}")
    env: dict[str, str] = {
        "PATH": PATH_ROOT if info.uid == 0 else PATH_USER,
        "LANG": DEFAULT_LANG,
        "HOME": info.home,
        "SHELL": info.shell,
    }
    tz = job.timezone or agent_tz
    if tz:
        env["TZ"] = tz
    env.update(job.env)
    env["USER"] = info.name
    env["LOGNAME"] = info.name
    env["SQU_EXECUTION_ID"] = execution_id
    env["SQU_RUN_ID"] = run_id
    env["SQU_JOB"] = job_name or job.name
    env["SQU_RETRY_INDEX"] = str(retry_index)
    given = dict(params or {})
    for param in job.parameters:
        if param.name in given:
            value = given.pop(param.name)
        elif param.default is not None:
            value = _param_text(param.default)
        elif param.required:
            raise InvalidJob(
                f"parameters.{param.name}", "is required and has no value", where=f"job {job.name}"
            )
        else:
            continue
        env[param_env_name(param.name)] = _param_text(value)
    for name, value in given.items():  # values for undeclared names still reach the job
        env[param_env_name(name)] = _param_text(value)
    for name, value in env.items():
        if "\0" in value:
            raise InvalidJob(f"env.{name}", "value contains a NUL byte", where=f"job {job.name}")
    return env
