"""agentd.toml loading, the default data dir, and init_data_dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agentd.config import (
    ConfigError,
    config_template,
    default_data_dir,
    init_data_dir,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]


def write_config(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(exist_ok=True)
    path = data_dir / "agentd.toml"
    path.write_text(text)
    return path


def test_missing_config_means_defaults(tmp_path: Path) -> None:
    """No agentd.toml: every setting at its default, jobs.d beside the data."""
    config = load_config(tmp_path)
    assert config.listen_host == "127.0.0.1"
    assert config.listen_port == 7421
    assert config.jobs_dir == tmp_path / "jobs.d"
    assert config.store_path == tmp_path / "agentd.db"
    assert config.name  # the host's name
    assert config.timezone  # the system's zone, explicit


def test_settings_are_read(tmp_path: Path) -> None:
    """Each section's settings land in the config, ints accepted for seconds."""
    write_config(
        tmp_path,
        '[agent]\nname = "db1"\ntimezone = "Europe/Paris"\n[server]\nport = 0\n'
        '[jobs]\ndir = "/etc/squ/jobs.d"\nkill_grace_s = 3\n[logs]\nmax_total_mb = 10\n'
        "[history]\nretention_days = 7\n[disk]\nmin_free_mb = 1\n",
    )
    config = load_config(tmp_path)
    assert (config.name, config.timezone, config.listen_port) == ("db1", "Europe/Paris", 0)
    assert config.jobs_dir == Path("/etc/squ/jobs.d")
    assert config.kill_grace_s == 3.0
    assert (config.log_max_total_bytes, config.history_days) == (10 << 20, 7)
    assert config.min_free_bytes == 1 << 20


def test_relative_jobs_dir_is_under_the_data_dir(tmp_path: Path) -> None:
    """A relative jobs dir is resolved against the data dir, not the working directory."""
    write_config(tmp_path, '[jobs]\ndir = "managed"\n')
    assert load_config(tmp_path).jobs_dir == tmp_path / "managed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[server]\nport = 70000\n",
            ":2: server.port: expected 0-65535 (0: any free port) (got 70000)",
        ),
        ('[server]\nport = "7421"\n', ":2: server.port: expected 0-65535"),
        ('\n[agent]\ntimezone = "Mars/Base"\n', ":3: agent.timezone: unknown time zone"),
        ('[agent]\nname = "db 1"\n', ":2: agent.name: expected a server name"),
        ("[logs]\nmax_age_days = 0\n", ":2: logs.max_age_days: expected 1-36500 days (got 0)"),
        (
            "[jobs]\nkill_grace_s = true\n",
            ":2: jobs.kill_grace_s: expected 0-3600 seconds (got True)",
        ),
        (
            "[logs]\nmax_age_dys = 3\n",
            ":2: logs.max_age_dys: unknown setting; did you mean 'max_age_days'?",
        ),
        ("[sever]\nport = 1\n", ":1: [sever]: unknown section; did you mean 'server'?"),
        ("agent = 3\n", ":1: [agent]: must be a table"),
        ("[server\n", ":1: TOML syntax error"),
    ],
)
def test_bad_setting_names_file_line_key_and_value(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each bad setting is reported with the file, line, key, value and what is valid."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.message.startswith(f"{path}{expected}")


def test_written_template_loads_to_the_defaults(tmp_path: Path) -> None:
    """The commented file init writes changes nothing: it loads to the defaults."""
    defaults = load_config(tmp_path)
    write_config(tmp_path, config_template(tmp_path))
    assert load_config(tmp_path) == defaults


def test_uncommented_template_gives_the_same_values(tmp_path: Path) -> None:
    """Uncommenting every setting of the template is valid and changes no value."""
    defaults = load_config(tmp_path)
    lines = config_template(tmp_path).splitlines()
    settings = [ln[2:] if " = " in ln and ln.startswith("# ") else ln for ln in lines]
    write_config(tmp_path, "\n".join(settings) + "\n")
    assert load_config(tmp_path) == defaults


# --------------------------------------------------------------------------- default dir


def run_default_dir(env: dict[str, str]) -> str:
    code = "from agentd.config import default_data_dir; print(default_data_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="the root default needs root")
def test_root_default_dir_is_var_lib(tmp_path: Path) -> None:
    """Root's default data dir is /var/lib/squ-agentd, whatever HOME and XDG say."""
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert run_default_dir(env) == "/var/lib/squ-agentd"


def test_env_variable_overrides_default_dir(tmp_path: Path) -> None:
    """$SQU_AGENTD_DATA names the data dir for every command."""
    assert run_default_dir({"SQU_AGENTD_DATA": str(tmp_path / "d")}) == str(tmp_path / "d")


def test_non_root_default_is_xdg_data_home() -> None:
    """A non-root agent keeps its data in $XDG_DATA_HOME/squ-agentd."""
    env = {"HOME": "/home/al", "XDG_DATA_HOME": "/data/al"}
    assert default_data_dir(euid=1000, environ=env) == Path("/data/al/squ-agentd")


def test_non_root_default_falls_back_to_local_share() -> None:
    """Without (or with a relative) XDG_DATA_HOME it is ~/.local/share/squ-agentd."""
    for env in ({"HOME": "/home/al"}, {"HOME": "/home/al", "XDG_DATA_HOME": "rel"}):
        assert default_data_dir(euid=1000, environ=env) == Path("/home/al/.local/share/squ-agentd")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
def test_non_root_default_in_a_real_process() -> None:
    """A process running as nobody gets its XDG data dir (real euid, real environment)."""
    python = "/usr/bin/python3"
    if not Path(python).exists():
        pytest.skip("no system python to run as nobody")
    # nobody can read neither the venv nor pytest's tmp_path: use a world-readable scratch dir.
    with tempfile.TemporaryDirectory(prefix="squ-nobody-") as scratch:
        src = Path(scratch)
        (src / "agentd").mkdir()
        (src / "shared").mkdir()
        # config.py needs only the standard library and these modules.
        for rel in ("agentd/__init__.py", "agentd/config.py", "shared/__init__.py",
                    "shared/errors.py", "shared/tomlpos.py"):  # fmt: skip
            (src / rel).write_text((ROOT / rel).read_text())
        for path in [src, *src.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        code = "from agentd.config import default_data_dir; print(default_data_dir())"
        out = subprocess.run(
            [python, "-c", code],
            env={"PYTHONPATH": str(src), "HOME": "/nonexistent", "XDG_DATA_HOME": "/srv/xdg"},
            user=65534,
            cwd=src,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.stdout.strip() == "/srv/xdg/squ-agentd", out.stderr


# --------------------------------------------------------------------------- init


def test_init_creates_the_layout(tmp_path: Path) -> None:
    """init makes the private data dir, a commented config, jobs.d, runs, logs and the store."""
    data = tmp_path / "a" / "data"
    result = init_data_dir(data)
    assert set(result.created) == {
        data,
        data / "agentd.toml",
        data / "jobs.d",
        data / "runs",
        data / "logs",
        data / "agentd.db",
    }
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "jobs.d").stat().st_mode) == 0o755
    assert (data / "agentd.toml").read_text().startswith("# squ-agentd settings.")
    assert load_config(data).listen_port == 7421


def test_init_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    """A second init changes nothing, and an edited agentd.toml is kept as it is."""
    init_data_dir(tmp_path / "d")
    config = tmp_path / "d" / "agentd.toml"
    config.write_text('[agent]\nname = "mine"\n')
    again = init_data_dir(tmp_path / "d")
    assert again.created == []
    assert config in again.existing
    assert config.read_text() == '[agent]\nname = "mine"\n'


def test_init_warns_about_a_shared_data_dir(tmp_path: Path) -> None:
    """An existing data dir others can read is kept but reported."""
    data = tmp_path / "d"
    data.mkdir()
    data.chmod(0o755)
    result = init_data_dir(data)
    assert result.warnings == [
        f"{data} is mode 0755; the agent's data should be private: chmod 700 {data}"
    ]


def test_docs_list_every_setting() -> None:
    """docs/configuration.md has a row for every setting init writes into agentd.toml."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    keys: list[str] = []
    section = ""
    for line in config_template(ROOT).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.startswith("# ") and " = " in line:
            keys.append(f"{section}.{line.removeprefix('# ').split(' = ')[0]}")
    assert len(keys) == 10
    assert [k for k in keys if f"| `{k}` |" not in text] == []
