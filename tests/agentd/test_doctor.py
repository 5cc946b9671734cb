"""squ-agentd doctor: each check finds what is wrong and says how to fix it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.commands import doctor
from agentd.commands.doctor import Level, gather
from agentd.config import init_data_dir
from agentd.server.boot import init_server_files
from agentd.server.tls import VALID_DAYS, ensure_certificate
from tests.e2e.agentkit import ROOT, AgentProc


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An initialised data dir, as `squ-agentd init` leaves it."""
    path = tmp_path / "data"
    init_data_dir(path)
    init_server_files(path, "test-host")
    return path


def _config(data: Path, text: str) -> None:
    (data / "agentd.toml").write_text(text)


def test_fresh_init_passes_config_permissions_certificate(data: Path) -> None:
    """A freshly initialised dir is ok for config, permissions and certificate."""
    ctx = gather(data)
    for check in (doctor.check_config, doctor.check_permissions, doctor.check_certificate):
        assert check(ctx).level is Level.OK, check(ctx)


def test_bad_config_fails_naming_file_and_line(data: Path) -> None:
    """A bad setting fails the config check with the file, the line and the key."""
    _config(data, "[server]\nport = 99999\n")
    found = doctor.check_config(gather(data))
    assert found.level is Level.FAIL
    assert "agentd.toml:2" in found.message and "port" in found.message
    assert "squ-agentd check" in found.fix


def test_broken_job_file_warns(data: Path) -> None:
    """A job file that does not parse is a warning naming it (its jobs keep their last good)."""
    (data / "jobs.d" / "bad.toml").write_text("[job.x]\ncron = 'never'\n")
    found = doctor.check_config(gather(data))
    assert found.level is Level.WARN
    assert "bad.toml" in found.message


def test_missing_data_dir_says_run_init(tmp_path: Path) -> None:
    """No data dir: config fails and the fix is `squ-agentd init`."""
    found = doctor.check_config(gather(tmp_path / "nope"))
    assert found.level is Level.FAIL
    assert "squ-agentd init" in found.fix


def test_readable_key_and_data_dir_fail_with_chmod_fix(data: Path) -> None:
    """A world-readable data dir and TLS key fail permissions, with the chmod that fixes them."""
    os.chmod(data, 0o755)
    os.chmod(data / "tls" / "agent.key", 0o644)
    found = doctor.check_permissions(gather(data))
    assert found.level is Level.FAIL
    assert f"chmod 700 {data}" in found.fix
    assert f"chmod 600 {data / 'tls' / 'agent.key'}" in found.fix


def test_writable_jobs_dir_fails(data: Path) -> None:
    """A jobs dir others can write (jobs run as root) fails permissions."""
    os.chmod(data / "jobs.d", 0o777)
    found = doctor.check_permissions(gather(data))
    assert found.level is Level.FAIL
    assert "others can add jobs" in found.message


def test_disk_below_minimum_fails(data: Path) -> None:
    """Free space under [disk] min_free_mb fails the disk check."""
    _config(data, "[disk]\nmin_free_mb = 1000000000\n")
    found = doctor.check_disk(gather(data))
    assert found.level is Level.FAIL
    assert "no new work starts" in found.message


def test_disk_with_room_is_ok(data: Path) -> None:
    """Plenty of room (min 0 MB) is ok."""
    _config(data, "[disk]\nmin_free_mb = 0\n")
    assert doctor.check_disk(gather(data)).level is not Level.FAIL


def test_clock_unsynchronised_warns(data: Path) -> None:
    """An unsynchronised clock warns and says how to enable NTP."""
    ctx = gather(data)
    ctx.extra["clock_state"] = (False, 16.0)
    found = doctor.check_clock(ctx)
    assert found.level is Level.WARN
    assert "set-ntp" in found.fix
    ctx.extra["clock_state"] = (True, 0.005)
    assert doctor.check_clock(ctx).level is Level.OK


def test_clock_state_reads_the_kernel() -> None:
    """adjtimex answers on Linux: (synchronised, max error in seconds)."""
    state = doctor.clock_state()
    assert state is not None
    synced, max_error_s = state
    assert isinstance(synced, bool) and max_error_s >= 0


def test_certificate_expiring_soon_warns(data: Path) -> None:
    """A certificate with 10 days left warns and points at rotation."""
    for name in ("agent.crt", "agent.key"):
        (data / "tls" / name).unlink()
    made = dt.datetime.now(dt.UTC) - dt.timedelta(days=VALID_DAYS - 10)
    ensure_certificate(data / "tls/agent.crt", data / "tls/agent.key", "h", now=made)
    found = doctor.check_certificate(gather(data))
    assert found.level is Level.WARN
    assert "expires" in found.message and "rotate" in found.fix


def test_certificate_key_mismatch_fails(data: Path, tmp_path: Path) -> None:
    """A key that is not the certificate's fails."""
    other = tmp_path / "other"
    ensure_certificate(other / "agent.crt", other / "agent.key", "h")
    shutil.copy(other / "agent.key", data / "tls" / "agent.key")
    found = doctor.check_certificate(gather(data))
    assert found.level is Level.FAIL
    assert "does not match" in found.message


def test_port_held_by_another_program_fails(data: Path) -> None:
    """The configured port taken by someone else (agent not running) fails and says how to look."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _config(data, f"[server]\nport = {port}\n")
        found = doctor.check_port(gather(data))
    assert found.level is Level.FAIL
    assert "held by another program" in found.message
    assert f"sport = :{port}" in found.fix


def test_agent_not_running_warns(data: Path) -> None:
    """No agent on the control socket is a warning with the start command."""
    found = doctor.check_agent(gather(data))
    assert found.level is Level.WARN
    assert "systemctl start squ-agentd" in found.fix


def test_a_check_that_raises_is_reported_not_raised(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that crashes shows as a failed check; the others still run."""

    def broken(ctx: doctor.Context) -> doctor.Check:
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(doctor.CHECKS, "clock", broken)
    results = doctor.run_checks(gather(data))
    assert results["clock"].level is Level.FAIL
    assert "probe exploded" in results["clock"].message
    assert results["config"].level is Level.OK


def _doctor_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "agentd.commands.doctor", "--data-dir", str(data), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_cli_exit_code_and_json(data: Path) -> None:
    """--json lists every check; the exit code is 1 when one fails, 0 with only warnings."""
    _config(data, "[server]\nport = 0\n")
    healthy = _doctor_cli(data, "--json")
    report = json.loads(healthy.stdout)
    assert [c["name"] for c in report["checks"]] == list(doctor.CHECKS)
    assert healthy.returncode == 0 and report["ok"] is True
    os.chmod(data / "tls" / "agent.key", 0o644)
    broken = _doctor_cli(data)
    assert broken.returncode == 1
    assert "fail  permissions" in broken.stdout
    assert "fix: chmod 600" in broken.stdout


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    proc = AgentProc(tmp_path / "running")
    try:
        yield proc
    finally:
        proc.cleanup()


def test_doctor_beside_a_running_agent(agent: AgentProc) -> None:
    """With the agent running: agent ok, port = where it listens, containment as it reports."""
    init_data_dir(agent.data_dir)
    init_server_files(agent.data_dir, "test-host")
    _config(agent.data_dir, "[server]\nport = 0\n")
    agent.start()
    ctx = gather(agent.data_dir)
    assert doctor.check_agent(ctx).level is Level.OK
    port = doctor.check_port(ctx)
    assert port.level is Level.OK and "listens on wss://" in port.message
    assert str(ctx.status["containment"]) in doctor.check_cgroups(ctx).message  # type: ignore[index]


def test_operators_template_only_warns_nobody_can_log_in(data: Path) -> None:
    """The init template (all comments) warns that no console can log in."""
    found = doctor.check_operators(gather(data))
    assert found.level is Level.WARN
    assert "names nobody" in found.message


def test_operators_bad_line_fails_naming_the_line(data: Path) -> None:
    """A bad line fails (every login is refused) and names file:line."""
    (data / "authorized_operators").write_text("# who\nroot alice ssh-ed25519 AAAA\n")
    found = doctor.check_operators(gather(data))
    assert found.level is Level.FAIL
    assert "authorized_operators:2" in found.message


def test_operators_valid_key_is_ok(data: Path, tmp_path: Path) -> None:
    """A valid OpenSSH key line passes and the roles are listed."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen absent")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = key.with_suffix(".pub").read_text().strip()
    (data / "authorized_operators").write_text(f"admin alice {line}\n")
    found = doctor.check_operators(gather(data))
    assert found.level is Level.OK, found
    assert "admin" in found.message
