"""Env-name rules: what a job's env may not set."""

from __future__ import annotations

import pytest

from shared.envrules import check_env_names, env_name_problem
from shared.errors import InvalidJob


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "BASH_ENV",
        "ENV",
        "IFS",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PERL5LIB",
        "NODE_OPTIONS",
        "BASH_FUNC_x%%",
        "GCONV_PATH",
        "SQU_JOB",
        "ld_preload",
    ],
)
def test_dangerous_names_are_refused(name):
    """Names that change loaders, shells or interpreters (or are reserved) are refused."""
    assert env_name_problem(name) is not None


@pytest.mark.parametrize("name", ["FOO", "PATH", "TZ", "LANG", "HOME", "_x1", "MY_LD_THING"])
def test_ordinary_names_are_allowed(name):
    """Ordinary names pass."""
    assert env_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "A=B", "A B"])
def test_malformed_names_are_refused(name):
    """A name that is not an identifier is refused."""
    assert "valid variable name" in (env_name_problem(name) or "")


def test_error_names_field_and_place():
    """The error names the variable and where the job came from."""
    with pytest.raises(InvalidJob) as info:
        check_env_names({"OK": "1", "LD_AUDIT": "x"}, where="jobs.d/a.toml")
    assert info.value.field == "env.LD_AUDIT"
    assert "jobs.d/a.toml" in info.value.message


def test_nul_in_value_is_refused():
    """A value with a NUL byte cannot be exec'd and is refused."""
    with pytest.raises(InvalidJob, match="NUL"):
        check_env_names({"A": "x\0y"})
