"""The agent's certificate (agentd/server/tls.py) and wss:// with a pinned fingerprint."""

from __future__ import annotations

import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from agentd.server.tls import (
    InsecureListen,
    TlsError,
    certificate_fingerprint,
    der_fingerprint,
    ensure_certificate,
    is_loopback,
    server_context,
)
from shared.enums import Role
from shared.protocol import Empty
from tests.agentd import server_support
from tests.agentd.server_support import StartAgent

start_agent = server_support.start_agent  # the fixture


def test_certificate_is_made_private_and_kept(tmp_path: Path) -> None:
    """init makes cert and key 0600 and returns the fingerprint; a second call keeps them."""
    cert, key = tmp_path / "tls" / "agent.crt", tmp_path / "tls" / "agent.key"
    first = ensure_certificate(cert, key, "db1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    assert first.startswith("SHA256:") and first == certificate_fingerprint(cert.read_bytes())
    assert ensure_certificate(cert, key, "db1") == first


def test_half_a_pair_is_an_error(tmp_path: Path) -> None:
    """A certificate without its key is never silently replaced."""
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    ensure_certificate(cert, key, "db1")
    key.unlink()
    with pytest.raises(TlsError, match=r"agent\.key: is missing"):
        ensure_certificate(cert, key, "db1")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("db1", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only loopback addresses count as loopback."""
    assert is_loopback(host) is loopback


async def test_wss_login_with_pinned_fingerprint(start_agent: StartAgent, tmp_path: Path) -> None:
    """Over wss:// the peer certificate's fingerprint equals the one init printed."""
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    pinned = ensure_certificate(cert, key, "localhost")
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # Pinning replaces CA validation (a self-signed certificate, like SSH host keys).
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    agent = await start_agent(ssl_context=server_context(cert, key), ssl_client=client_ctx)
    client = await agent.login(Role.VIEWER)
    der = client.ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert der_fingerprint(der) == pinned
    assert (await client.call("agent.info", Empty())).name == "db1"


def test_init_server_files_makes_cert_and_operators_template(tmp_path: Path) -> None:
    """init makes the certificate and a commented authorized_operators (0600) that parses empty."""
    from agentd.server.boot import OPERATORS_FILE, TLS_CERT, init_server_files
    from shared.identity import parse_authorized_operators

    fingerprint = init_server_files(tmp_path, "db1")
    assert fingerprint == certificate_fingerprint((tmp_path / TLS_CERT).read_bytes())
    operators = tmp_path / OPERATORS_FILE
    assert stat.S_IMODE(operators.stat().st_mode) == 0o600
    assert parse_authorized_operators(operators.read_text(), str(operators)) == []
    assert init_server_files(tmp_path, "db1") == fingerprint


async def test_start_server_without_certificate_off_loopback_fails(tmp_path: Path) -> None:
    """start_server refuses to listen off loopback when the agent has no certificate."""
    from agentd.server.boot import start_server

    with pytest.raises(InsecureListen, match="squ-agentd init"):
        await start_server(
            None, data_dir=tmp_path, agent_name="db1", agent_version="0.1", host="0.0.0.0", port=0
        )


def test_agent_key_is_openssh_and_kept(tmp_path: Path) -> None:
    """The agent's own key is OpenSSH Ed25519, 0600, readable by ssh-keygen, and kept."""
    from agentd.server.boot import AGENT_KEY, ensure_agent_key

    line = ensure_agent_key(tmp_path, comment="agent@db1")
    path = tmp_path / AGENT_KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and line.startswith("ssh-ed25519 ")
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert derived.split()[:2] == line.split()[:2]
    assert ensure_agent_key(tmp_path) == line
