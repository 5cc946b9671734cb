"""Which environment variable names a job may set.

Jobs run as root or as a chosen user, in a clean environment the agent builds.
A job's ``env`` must not be able to change how loaders, shells or language
runtimes start (DESIGN.md: ``LD_*``, ``BASH_ENV``, ``PYTHON*``, ... are
refused): those turn "run this command" into "run this code first". The rule
is checked where a job enters (``shared.jobs.parse_job``) and again by the
process set-up, so a refused name never reaches ``execve``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.errors import SquError

__all__ = ["REFUSED_NAMES", "REFUSED_PREFIXES", "InvalidEnv", "check_env_names", "refusal"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Exact names that change how a shell, the C library or a loader behaves.
REFUSED_NAMES = frozenset(
    {
        "BASH_ENV",  # bash sources it before running a non-interactive script
        "ENV",  # sh/dash source it
        "IFS",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",  # evaluated by bash -x
        "GCONV_PATH",  # glibc loads modules from it
        "LOCPATH",
        "GLIBC_TUNABLES",
        "NODE_OPTIONS",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
    }
)
# Prefixes: loader variables, exported bash functions, interpreters' start-up hooks.
REFUSED_PREFIXES = (
    "LD_",
    "DYLD_",
    "BASH_FUNC_",
    "PYTHON",
    "PERL5",
    "PERLLIB",
    "RUBY",
    "MALLOC_",
)


class InvalidEnv(SquError):
    """An environment variable name a job may not set, with the reason."""

    code = "invalid_env"

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name!r}: {why}", name=name, why=why)
        self.name = name
        self.why = why


def refusal(name: str) -> str | None:
    """Why a job may not set ``name``, or None if it may."""
    if not _NAME.match(name):
        return "not a valid variable name (letters, digits and '_', not starting with a digit)"
    if name in REFUSED_NAMES:
        return "refused: it changes how shells or the C library start"
    for prefix in REFUSED_PREFIXES:
        if name.startswith(prefix):
            return f"refused: {prefix}* variables change how loaders or interpreters start"
    return None


def check_env_names(env: Mapping[str, str]) -> None:
    """Raise ``InvalidEnv`` for the first name in ``env`` a job may not set."""
    for name in env:
        why = refusal(name)
        if why is not None:
            raise InvalidEnv(name, why)
