"""Which environment variable names a job may set: a pure rule, applied where job data enters.

DESIGN.md: job env names that change loaders or shells are refused, because a
job's env would otherwise let its author run code in whatever the job starts
before the job's own command (``LD_PRELOAD``, ``BASH_ENV``) or change how a
command line is split (``IFS``). ``SQU_*`` names are set by the agent itself.
"""

from __future__ import annotations

import re

from shared.errors import InvalidJob

__all__ = ["REFUSED_NAMES", "REFUSED_PREFIXES", "check_env_names", "env_name_problem"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

REFUSED_NAMES = frozenset(
    {
        # shells
        "BASH_ENV",
        "ENV",
        "IFS",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "GLOBIGNORE",
        "CDPATH",
        "PROMPT_COMMAND",
        # the C library's loader and locale machinery
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "RES_OPTIONS",
        # interpreters that load code from the environment
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "PERL5DB",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "TCLLIBPATH",
        "LUA_INIT",
        "LUA_PATH",
        "LUA_CPATH",
    }
)

REFUSED_PREFIXES = (
    "LD_",  # LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...
    "DYLD_",
    "PYTHON",  # PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, ...
    "BASH_FUNC_",  # exported shell functions
    "MALLOC_",
    "SQU_",  # reserved: the agent sets SQU_EXECUTION_ID, SQU_PARAM_*, ...
)


def env_name_problem(name: str) -> str | None:
    """Why ``name`` may not be set by a job, or None when it may."""
    if not _NAME.match(name):
        return "is not a valid variable name (letters, digits and _, not starting with a digit)"
    upper = name.upper()
    if upper in REFUSED_NAMES:
        return "changes how shells, loaders or interpreters start, so a job may not set it"
    for prefix in REFUSED_PREFIXES:
        if upper.startswith(prefix):
            if prefix == "SQU_":
                return "SQU_* names are reserved for the variables the agent sets"
            return f"{prefix}* names change how programs load code, so a job may not set them"
    return None


def check_env_names(env: dict[str, str], *, where: str = "") -> None:
    """Raise ``InvalidJob(field="env.<NAME>")`` for the first name or value a job may not use.

    Call where job data enters (``parse_job``) and again just before spawning.
    """
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidJob("env", "names and values must be strings", where=where, value=name)
        problem = env_name_problem(name)
        if problem is not None:
            raise InvalidJob(f"env.{name}", problem, where=where)
        if "\0" in value:
            raise InvalidJob(f"env.{name}", "value contains a NUL byte", where=where)
