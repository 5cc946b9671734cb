"""OpenSSH keys, SSHSIG signatures and authorized_operators (shared/identity.py)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from shared.enums import Role
from shared.identity import (
    APPROVAL_NAMESPACE,
    AUTH_NAMESPACE,
    BadSignature,
    InvalidKey,
    InvalidOperators,
    PrivateKey,
    UnknownKey,
    fingerprint,
    load_private_key,
    load_public_key,
    parse_authorized_operators,
    public_key_line,
    sign,
    verify,
)

KEY_TYPES = [("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "2048"])]


def keygen(tmp: Path, kind: str, extra: list[str], name: str = "id") -> Path:
    path = tmp / f"{name}_{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "test@host", "-f", str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("keys")
    return {kind: keygen(tmp, kind, extra) for kind, extra in KEY_TYPES}


def private(path: Path) -> PrivateKey:
    return load_private_key(path.read_bytes(), where=str(path))


@pytest.mark.parametrize("kind", [k for k, _ in KEY_TYPES])
def test_fingerprint_matches_ssh_keygen(keys: dict[str, Path], kind: str) -> None:
    """fingerprint() prints exactly what ssh-keygen -l prints."""
    path = keys[kind]
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{path}.pub"], check=True, capture_output=True, text=True
    ).stdout
    key = load_public_key(Path(f"{path}.pub").read_text())
    assert fingerprint(key) == out.split()[1]


@pytest.mark.parametrize("kind", [k for k, _ in KEY_TYPES])
def test_our_signature_verifies_with_ssh_keygen(
    keys: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    """ssh-keygen -Y verify accepts a signature made by sign()."""
    path = keys[kind]
    data = b"run backup on db1\n"
    (tmp_path / "sig").write_text(sign(private(path), AUTH_NAMESPACE, data))
    (tmp_path / "allowed").write_text(f"op {Path(f'{path}.pub').read_text()}")
    result = subprocess.run(
        [
            *("ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "op"),
            *("-n", AUTH_NAMESPACE, "-s", str(tmp_path / "sig")),
        ],
        input=data,
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", [k for k, _ in KEY_TYPES])
def test_ssh_keygen_signature_verifies_with_us(
    keys: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    """verify() accepts a signature made by ssh-keygen -Y sign and returns the signer."""
    path = keys[kind]
    data = tmp_path / "intent"
    data.write_bytes(b"approve exec 01J\n")
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(path), "-n", APPROVAL_NAMESPACE, str(data)],
        check=True,
        capture_output=True,
    )
    armored = Path(f"{data}.sig").read_text()
    key = load_public_key(Path(f"{path}.pub").read_text())
    signer = verify(armored, APPROVAL_NAMESPACE, data.read_bytes(), [key])
    assert fingerprint(signer) == fingerprint(key)


def test_other_namespace_is_refused(keys: dict[str, Path]) -> None:
    """A login proof never passes as an approval: the namespace is checked."""
    key = private(keys["ed25519"])
    armored = sign(key, AUTH_NAMESPACE, b"x")
    with pytest.raises(BadSignature, match="namespace"):
        verify(armored, APPROVAL_NAMESPACE, b"x", [key.public_key()])


def test_changed_data_is_refused(keys: dict[str, Path]) -> None:
    """A signature over other data does not verify."""
    key = private(keys["ed25519"])
    armored = sign(key, AUTH_NAMESPACE, b"challenge-1")
    with pytest.raises(BadSignature, match="does not verify"):
        verify(armored, AUTH_NAMESPACE, b"challenge-2", [key.public_key()])


def test_key_not_allowed_is_unknown_key(keys: dict[str, Path]) -> None:
    """A signature by a key outside the allowed set names that key's fingerprint."""
    signer = private(keys["ed25519"])
    other = private(keys["ecdsa"])
    armored = sign(signer, AUTH_NAMESPACE, b"x")
    with pytest.raises(UnknownKey) as caught:
        verify(armored, AUTH_NAMESPACE, b"x", [other.public_key()])
    assert caught.value.fingerprint == fingerprint(signer)


@pytest.mark.parametrize(
    "armored",
    [
        "",
        "hello",
        "-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----",
        "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----",
        "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
    ],
)
def test_garbage_signature_is_bad_signature(keys: dict[str, Path], armored: str) -> None:
    """Malformed signature text raises BadSignature, never anything else."""
    with pytest.raises(BadSignature):
        verify(armored, AUTH_NAMESPACE, b"x", [private(keys["ed25519"]).public_key()])


def test_truncated_signature_is_bad_signature(keys: dict[str, Path]) -> None:
    """Every truncation of a valid signature is refused cleanly."""
    key = private(keys["ed25519"])
    armored = sign(key, AUTH_NAMESPACE, b"x")
    body = base64.b64decode("".join(armored.strip().splitlines()[1:-1]))
    for cut in range(0, len(body), 7):
        text = base64.b64encode(body[:cut]).decode()
        with pytest.raises((BadSignature, UnknownKey)):
            verify(
                f"-----BEGIN SSH SIGNATURE-----\n{text}\n-----END SSH SIGNATURE-----",
                AUTH_NAMESPACE,
                b"x",
                [key.public_key()],
            )


def test_public_key_line_round_trips(keys: dict[str, Path]) -> None:
    """public_key_line() gives the .pub file's key (without its comment)."""
    line = Path(f"{keys['ed25519']}.pub").read_text()
    assert public_key_line(private(keys["ed25519"])) == " ".join(line.split()[:2])


def test_unreadable_private_key_names_where() -> None:
    """A private key that is not OpenSSH format raises InvalidKey naming the file."""
    with pytest.raises(InvalidKey, match=r"/home/a/\.ssh/id"):
        load_private_key(b"not a key", where="/home/a/.ssh/id")


def test_authorized_operators_parse(keys: dict[str, Path]) -> None:
    """Roles, names and keys are read; comments and blank lines are skipped."""
    ed = Path(f"{keys['ed25519']}.pub").read_text().strip()
    rsa_line = Path(f"{keys['rsa']}.pub").read_text().strip()
    text = f"# team\n\nadmin alice {ed}\nviewer bob {rsa_line}\n"
    ops = parse_authorized_operators(text, "/etc/squ/authorized_operators")
    assert [(o.role, o.name) for o in ops] == [(Role.ADMIN, "alice"), (Role.VIEWER, "bob")]
    assert ops[0].fingerprint == fingerprint(load_public_key(ed))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("root alice {key}", "unknown role 'root'"),
        ("admin alice", "expected ROLE NAME KEYTYPE BASE64"),
        ("admin alice ssh-ed25519 AAAAnotbase64", "not an OpenSSH public key"),
    ],
)
def test_authorized_operators_bad_line_names_file_and_line(
    keys: dict[str, Path], line: str, why: str
) -> None:
    """A bad line raises InvalidOperators with file:line and the reason."""
    key = " ".join(Path(f"{keys['ed25519']}.pub").read_text().split()[:2])
    text = "# header\n" + line.format(key=key) + "\n"
    with pytest.raises(InvalidOperators, match=rf"^ops:2: .*{why}"):
        parse_authorized_operators(text, "ops")


def test_authorized_operators_duplicate_key_is_refused(keys: dict[str, Path]) -> None:
    """The same key on two lines is refused, naming the earlier line."""
    key = " ".join(Path(f"{keys['ed25519']}.pub").read_text().split()[:2])
    with pytest.raises(InvalidOperators, match=r"ops:2: .*already given on line 1"):
        parse_authorized_operators(f"admin a {key}\nviewer b {key}\n", "ops")
