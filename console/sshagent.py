"""Sign an approval through ssh-agent: the key never leaves the agent (or the hardware token).

``sign_with_agent(socket_path, public_key_line, namespace, data)`` asks the
agent at ``$SSH_AUTH_SOCK`` (draft-miller-ssh-agent: REQUEST_IDENTITIES,
SIGN_REQUEST) to sign the SSHSIG wrapper of ``data`` and returns the armored
signature, byte for byte what ``ssh-keygen -Y sign`` makes, so
``shared.identity.verify`` accepts it. Blocking and short: the CLI calls it
in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct

from shared.errors import SquError

__all__ = ["SshAgentError", "agent_identities", "sign_with_agent"]

_REQUEST_IDENTITIES, _IDENTITIES_ANSWER = 11, 12
_SIGN_REQUEST, _SIGN_RESPONSE, _FAILURE = 13, 14, 5
_RSA_SHA2_512 = 4
_MAGIC = b"SSHSIG"
_MAX_REPLY = 256 * 1024


class SshAgentError(SquError):
    code = "ssh_agent"

    def __init__(self, why: str) -> None:
        super().__init__(f"ssh-agent: {why}", why=why)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _call(sock_path: str, kind: int, payload: bytes) -> tuple[int, bytes]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(sock_path)
            conn.sendall(_string(bytes([kind]) + payload))
            head = _read(conn, 4)
            (length,) = struct.unpack(">I", head)
            if not 0 < length <= _MAX_REPLY:
                raise SshAgentError(f"reply of {length} bytes")
            body = _read(conn, length)
    except OSError as exc:
        raise SshAgentError(f"cannot talk to {sock_path} ({exc.strerror or exc})") from None
    return body[0], body[1:]


def _read(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise SshAgentError("the agent closed the connection")
        out += chunk
    return out


def _strings(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(data):
        raise SshAgentError("truncated reply")
    (length,) = struct.unpack(">I", data[pos : pos + 4])
    end = pos + 4 + length
    if end > len(data):
        raise SshAgentError("truncated reply")
    return data[pos + 4 : end], end


def agent_identities(sock_path: str) -> list[tuple[bytes, str]]:
    """(public key blob, comment) of every key the agent holds."""
    kind, body = _call(sock_path, _REQUEST_IDENTITIES, b"")
    if kind != _IDENTITIES_ANSWER or len(body) < 4:
        raise SshAgentError("the agent did not list its keys")
    (count,) = struct.unpack(">I", body[:4])
    pos, found = 4, []
    for _ in range(count):
        blob, pos = _strings(body, pos)
        comment, pos = _strings(body, pos)
        found.append((blob, comment.decode(errors="replace")))
    return found


def sign_with_agent(
    sock_path: str, public_key_line: str | None, namespace: str, data: bytes
) -> str:
    """An armored SSHSIG of ``data`` in ``namespace`` by the agent's key ``public_key_line``.

    Without ``public_key_line`` the agent must hold exactly one key.
    """
    keys = agent_identities(sock_path)
    if public_key_line is not None:
        wanted = base64.b64decode(public_key_line.split()[1])
        blob = next((b for b, _ in keys if b == wanted), None)
        if blob is None:
            raise SshAgentError(
                f"the agent does not hold {' '.join(public_key_line.split()[:2])[:60]}... "
                "(ssh-add it)"
            )
    elif len(keys) == 1:
        blob = keys[0][0]
    else:
        raise SshAgentError(f"the agent holds {len(keys)} keys: say which one with --key")
    hash_alg = "sha512"
    signed = (
        _MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(hashlib.sha512(data).digest())
    )
    key_type, _ = _strings(blob, 0)
    flags = _RSA_SHA2_512 if key_type == b"ssh-rsa" else 0
    kind, body = _call(
        sock_path, _SIGN_REQUEST, _string(blob) + _string(signed) + struct.pack(">I", flags)
    )
    if kind == _FAILURE:
        raise SshAgentError("the agent refused to sign (confirmation declined, or a locked token)")
    if kind != _SIGN_RESPONSE:
        raise SshAgentError(f"unexpected reply type {kind}")
    signature, _ = _strings(body, 0)
    sshsig = (
        _MAGIC
        + struct.pack(">I", 1)
        + _string(blob)
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(signature)
    )
    b64 = base64.b64encode(sshsig).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return (
        "\n".join(["-----BEGIN SSH SIGNATURE-----", *lines, "-----END SSH SIGNATURE-----"]) + "\n"
    )
