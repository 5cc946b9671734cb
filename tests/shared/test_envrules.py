"""Environment names a job may not set (DESIGN.md: LD_*, BASH_ENV, PYTHON*, ... are refused)."""

from __future__ import annotations

import pytest

from shared.envrules import InvalidEnv, check_env_names, refusal


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "ENV",
        "IFS",
        "BASH_FUNC_foo%%",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PERL5OPT",
        "RUBYOPT",
        "NODE_OPTIONS",
        "SHELLOPTS",
        "PS4",
        "GCONV_PATH",
        "LOCPATH",
        "MALLOC_CHECK_",
        "GLIBC_TUNABLES",
    ],
)
def test_loader_and_shell_names_are_refused(name: str) -> None:
    """Every name that changes how loaders, shells or runtimes start is refused."""
    assert refusal(name) is not None


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "A=B"])
def test_malformed_names_are_refused(name: str) -> None:
    """Names that are not [A-Za-z_][A-Za-z0-9_]* are refused."""
    assert refusal(name) is not None


@pytest.mark.parametrize("name", ["PATH", "HOME", "BACKUP_DIR", "_x", "LANG", "PGHOST"])
def test_ordinary_names_are_allowed(name: str) -> None:
    """Ordinary variables pass."""
    assert refusal(name) is None


def test_check_env_names_names_the_variable() -> None:
    """The error names the refused variable and why."""
    with pytest.raises(InvalidEnv, match="'LD_PRELOAD': refused"):
        check_env_names({"OK": "1", "LD_PRELOAD": "/tmp/x.so"})
