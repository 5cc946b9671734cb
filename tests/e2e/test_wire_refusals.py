"""Every refusal on the console side of the wire, against real agents: the error says
what went wrong and on which agent, and never shows a traceback."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import load_inventory
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    _skip_if_missing()
    kit = Wire(tmp_path)
    try:
        yield kit
    finally:
        kit.cleanup()


def test_first_connection_pins_the_certificate(wire: Wire) -> None:
    """The first wss:// connection stores the agent's fingerprint in fleet.toml."""
    wire.agent("tls1", tls=True)
    assert load_inventory(wire.config).get("tls1").fingerprint == ""
    result = wire.squ("jobs")
    assert result.returncode == 0, result.stderr
    pinned = load_inventory(wire.config).get("tls1").fingerprint
    assert pinned == wire.fingerprints["tls1"]


def test_a_changed_certificate_is_refused_loudly(wire: Wire) -> None:
    """A certificate other than the pinned one is refused, naming both fingerprints."""
    wire.agent("tls2", tls=True, add=False)
    wrong = "SHA256:" + "A" * 43
    added = wire.squ("agents", "add", "tls2", wire.url("tls2"), "--fingerprint", wrong)
    assert added.returncode == 0, added.stderr
    result = wire.squ("jobs")
    assert result.returncode == 2
    assert "tls2: pin mismatch" in result.stderr
    assert wrong in result.stderr and wire.fingerprints["tls2"] in result.stderr
    assert "REFUSING TO CONNECT" in result.stderr
    # The pin is never silently replaced.
    assert load_inventory(wire.config).get("tls2").fingerprint == wrong


def test_an_unknown_key_is_refused_naming_the_agent(wire: Wire) -> None:
    """An operator key missing from authorized_operators: auth failed, with the agent's reason."""
    proc = wire.agent("locked")
    (proc.data_dir / "authorized_operators").write_text("# nobody\n")
    result = wire.squ("jobs")
    assert result.returncode == 2
    assert "locked: auth failed" in result.stderr
    assert "unknown_key" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_viewer_may_list_but_not_run(wire: Wire) -> None:
    """The agent enforces roles: a viewer's run is refused as forbidden, naming the role."""
    proc = wire.agent("ro", role="viewer")
    proc.write_jobs("hello.toml", '[job.hello]\ncommand = "true"\n')
    proc.hup()
    listed = wire.squ("jobs")
    assert listed.returncode == 0, listed.stderr
    result = wire.squ("run", "hello", "--on", "ro")
    assert result.returncode == 1
    assert "ro:" in result.stderr and "forbidden" in result.stderr and "viewer" in result.stderr


def test_a_viewer_cannot_apply(wire: Wire) -> None:
    """Changing what runs as root needs admin: apply by a viewer is refused per agent."""
    wire.agent("ro2", role="viewer")
    path = wire.tmp / "j.toml"
    path.write_text(textwrap.dedent('[job.j]\ncommand = "true"\n'))
    result = wire.squ("apply", str(path))
    assert result.returncode == 1
    assert "j on ro2:" in result.stderr and "admin" in result.stderr


def test_no_operator_key_says_how_to_make_one(wire: Wire) -> None:
    """Without any key the CLI says which files it tried and how to make one."""
    wire.agent("nokey")
    (wire.config / "id_ed25519").unlink()
    result = wire.squ("jobs")
    assert result.returncode == 2
    assert "no operator key found" in result.stderr and "squ keygen" in result.stderr


def test_an_empty_inventory_points_to_agents_add(wire: Wire) -> None:
    """With no agents, commands say how to add one (or try the demo)."""
    result = wire.squ("jobs")
    assert result.returncode == 2
    assert "squ agents add" in result.stderr and "squ demo" in result.stderr


def test_an_agent_that_is_down_is_named(wire: Wire) -> None:
    """An agent that does not answer is down (connection refused); alone, that is exit 2."""
    added = wire.squ("agents", "add", "dead", "ws://127.0.0.1:9")
    assert added.returncode == 0
    result = wire.squ("jobs")
    assert result.returncode == 2
    assert "dead: down (connection refused" in result.stderr
    assert "no agent could be reached (dead)" in result.stderr


def test_an_agent_that_never_answers_is_named_after_the_timeout(wire: Wire) -> None:
    """A listener that accepts but never speaks: the command gives up on it, saying so."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert wire.squ("agents", "add", "mute", f"ws://127.0.0.1:{port}").returncode == 0
        result = wire.squ("jobs", "--connect-timeout", "1")
    assert result.returncode == 2
    assert "mute: no answer within 1 s" in result.stderr
