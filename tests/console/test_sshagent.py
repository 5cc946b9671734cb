"""console/sshagent: approvals signed by a real ssh-agent verify like ssh-keygen's."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from console.sshagent import SshAgentError, agent_identities, sign_with_agent
from shared.identity import APPROVAL_NAMESPACE, public_key_line, verify


@pytest.fixture
def agent_sock(tmp_path: Path) -> Iterator[Path]:
    """A real ssh-agent on a socket in tmp_path, stopped afterwards (by its own pid)."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("ssh-agent did not start")
        time.sleep(0.02)
    try:
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def add_key(sock: Path, tmp_path: Path, key: ed25519.Ed25519PrivateKey, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
    subprocess.run(["ssh-add", "-q", str(path)], check=True, env=env, capture_output=True)


def test_agent_signature_verifies(agent_sock: Path, tmp_path: Path) -> None:
    """A signature made through ssh-agent is accepted by shared.identity.verify."""
    key = ed25519.Ed25519PrivateKey.generate()
    add_key(agent_sock, tmp_path, key, "k1")
    sig = sign_with_agent(str(agent_sock), public_key_line(key), APPROVAL_NAMESPACE, b"intent")
    signer = verify(sig, APPROVAL_NAMESPACE, b"intent", [key.public_key()])
    assert public_key_line(signer) == public_key_line(key)


def test_the_named_key_is_used_among_several(agent_sock: Path, tmp_path: Path) -> None:
    """With two keys loaded, the one named signs; without a name, the choice is refused."""
    first, second = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    add_key(agent_sock, tmp_path, first, "k1")
    add_key(agent_sock, tmp_path, second, "k2")
    assert len(agent_identities(str(agent_sock))) == 2
    sig = sign_with_agent(str(agent_sock), public_key_line(second), APPROVAL_NAMESPACE, b"x")
    assert verify(sig, APPROVAL_NAMESPACE, b"x", [second.public_key()])
    with pytest.raises(SshAgentError, match="holds 2 keys"):
        sign_with_agent(str(agent_sock), None, APPROVAL_NAMESPACE, b"x")


def test_key_not_in_the_agent_is_named(agent_sock: Path) -> None:
    """Asking for a key the agent does not hold says to ssh-add it."""
    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(SshAgentError, match="ssh-add it"):
        sign_with_agent(str(agent_sock), public_key_line(stranger), APPROVAL_NAMESPACE, b"x")


def test_no_agent_is_a_clear_error(tmp_path: Path) -> None:
    """A socket that is not there is an SshAgentError naming it, not a traceback."""
    with pytest.raises(SshAgentError, match="cannot talk to"):
        sign_with_agent(str(tmp_path / "none.sock"), None, APPROVAL_NAMESPACE, b"x")
