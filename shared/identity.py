"""Operator keys and signatures: OpenSSH keys, SSHSIG sign / verify, authorized_operators.

Operators are identified by keys in OpenSSH format, so the SSH key an operator
already has can serve (DESIGN.md "Identity and security"). Signatures follow
OpenSSH's SSHSIG format (PROTOCOL.sshsig) with a namespace of our own, so
``ssh-keygen -Y sign -n NAMESPACE`` makes a signature ``verify`` accepts and
``ssh-keygen -Y verify`` accepts what ``sign`` makes. The same two calls sign
the agent's login challenge (namespace ``AUTH_NAMESPACE``) and, later, approval
intents: ``sign(private_key, namespace, data) -> armored str`` and
``verify(armored, namespace, data, allowed_public_keys) -> PublicKey``.

Pure: keys and files arrive as bytes / text; nothing here reads a file or a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from shared.enums import Role
from shared.errors import SquError

# cryptography is imported where a key is read, made or used, not here: loading its
# native module costs an idle agent ~7-8 MB of RSS (issue 8), and an agent nobody logs
# in to never touches a key (docs/decisions/0003-daemon.md, 2026-11-27).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = [
    "APPROVAL_NAMESPACE",
    "AUTH_NAMESPACE",
    "BadSignature",
    "InvalidKey",
    "InvalidOperators",
    "Operator",
    "PrivateKey",
    "PublicKey",
    "UnknownKey",
    "fingerprint",
    "load_private_key",
    "load_public_key",
    "parse_authorized_operators",
    "public_key_line",
    "sign",
    "verify",
]

if TYPE_CHECKING:
    PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def __getattr__(name: str) -> Any:
    # PublicKey / PrivateKey stay importable at run time, built on first use (see above).
    if name in ("PublicKey", "PrivateKey"):
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if name == "PublicKey":
            return ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
        return ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# SSHSIG namespaces keep a signature made for one purpose from being accepted
# for another (a login proof can never pass as an approval).
AUTH_NAMESPACE = "auth@squ-cron"
APPROVAL_NAMESPACE = "approval@squ-cron"

_MAGIC = b"SSHSIG"
_SIG_VERSION = 1
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def _ecdsa_hash(curve: str) -> hashes.HashAlgorithm:
    """The hash an OpenSSH ECDSA key of ``curve`` (``nistp256``...) signs with."""
    from cryptography.hazmat.primitives import hashes

    by_curve: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
        "nistp256": hashes.SHA256,
        "nistp384": hashes.SHA384,
        "nistp521": hashes.SHA512,
    }
    return by_curve[curve]()


_CURVE_NAME = {"secp256r1": "nistp256", "secp384r1": "nistp384", "secp521r1": "nistp521"}


class InvalidKey(SquError):
    """A key that cannot be read as an OpenSSH public or private key."""

    code = "invalid_key"

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}", where=where, why=why)


class BadSignature(SquError):
    """A signature that is malformed, for another namespace, or does not verify."""

    code = "bad_signature"

    def __init__(self, why: str) -> None:
        super().__init__(f"signature refused: {why}", why=why)


class UnknownKey(SquError):
    """A well-formed signature by a key that is not among the allowed ones."""

    code = "unknown_key"

    def __init__(self, key_fingerprint: str) -> None:
        super().__init__(
            f"key {key_fingerprint} is not in authorized_operators", fingerprint=key_fingerprint
        )
        self.fingerprint = key_fingerprint


class InvalidOperators(SquError):
    """A line of an authorized_operators file that cannot be used; names file and line."""

    code = "invalid_operators"

    def __init__(self, where: str, line: int, why: str) -> None:
        super().__init__(f"{where}:{line}: {why}", where=where, line=line, why=why)


class Operator(msgspec.Struct, frozen=True, kw_only=True):
    """One line of authorized_operators: who may connect, as what."""

    role: Role
    name: str
    public_key: PublicKey
    fingerprint: str


# -- keys ---------------------------------------------------------------------


def load_public_key(text: str | bytes, where: str = "public key") -> PublicKey:
    """Read one OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = text.encode() if isinstance(text, str) else text
    try:
        key = serialization.load_ssh_public_key(data.strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKey(where, f"not an OpenSSH public key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InvalidKey(where, f"unsupported key type {type(key).__name__}")
    return key


def load_private_key(
    data: str | bytes, where: str = "private key", password: bytes | None = None
) -> PrivateKey:
    """Read an OpenSSH private key file's content (``-----BEGIN OPENSSH PRIVATE KEY-----``)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    raw = data.encode() if isinstance(data, str) else data
    try:
        key = serialization.load_ssh_private_key(raw, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidKey(where, f"not a usable OpenSSH private key ({exc})") from None
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise InvalidKey(where, f"unsupported key type {type(key).__name__}")
    return key


def public_key_line(key: PublicKey | PrivateKey) -> str:
    """The key as one OpenSSH line (``ssh-ed25519 AAAA...``), for authorized_operators."""
    from cryptography.hazmat.primitives import serialization

    return (
        _public(key)
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _public(key: PublicKey | PrivateKey) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return key
    return key.public_key()


def _public_blob(key: PublicKey) -> bytes:
    return base64.b64decode(public_key_line(key).split()[1])


def fingerprint(key: PublicKey | PrivateKey) -> str:
    """``SHA256:<base64, no padding>`` exactly as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(_public_blob(_public(key))).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# -- SSH wire encoding -------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    if value == 0:
        return _string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # leading 0 keeps it positive
    return _string(raw)


class _Reader:
    """Reads SSH wire fields; any short or overlong input raises ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.pos == len(self.data)


def _signed_data(namespace: str, hash_alg: str, data: bytes) -> bytes:
    # PROTOCOL.sshsig: what is actually signed is a wrapper around H(message).
    digest = _HASHES[hash_alg](data).digest()
    return (
        _MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(digest)
    )


def _raw_sign(key: PrivateKey, payload: bytes) -> bytes:
    """An SSH signature blob (string format-name, string signature) over ``payload``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _string(b"ssh-ed25519") + _string(key.sign(payload))
    if isinstance(key, rsa.RSAPrivateKey):
        # ssh-keygen -Y sign uses rsa-sha2-512 for RSA keys; plain ssh-rsa (SHA-1) is never made.
        sig = key.sign(payload, padding.PKCS1v15(), hashes.SHA512())
        return _string(b"rsa-sha2-512") + _string(sig)
    curve = _CURVE_NAME.get(key.curve.name)
    if curve is None:
        raise InvalidKey("private key", f"unsupported curve {key.curve.name}")
    der = key.sign(payload, ec.ECDSA(_ecdsa_hash(curve)))
    r, s = decode_dss_signature(der)
    return _string(f"ecdsa-sha2-{curve}".encode()) + _string(_mpint(r) + _mpint(s))


def _raw_verify(key: PublicKey, blob: bytes, payload: bytes) -> None:
    """Raise BadSignature unless ``blob`` is a valid signature of ``payload`` by ``key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    try:
        reader = _Reader(blob)
        fmt = reader.string().decode("ascii")
        sig = reader.string()
        if not reader.done():
            raise ValueError("trailing bytes")
    except (ValueError, UnicodeDecodeError):
        raise BadSignature("malformed signature blob") from None
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if fmt != "ssh-ed25519":
                raise BadSignature(f"signature format {fmt} does not match an Ed25519 key")
            key.verify(sig, payload)
        elif isinstance(key, rsa.RSAPublicKey):
            rsa_hashes: dict[str, type[hashes.SHA256 | hashes.SHA512]] = {
                "rsa-sha2-512": hashes.SHA512,
                "rsa-sha2-256": hashes.SHA256,
            }
            rsa_hash = rsa_hashes.get(fmt)
            if rsa_hash is None:
                raise BadSignature(f"signature format {fmt} is not accepted for an RSA key")
            key.verify(sig, payload, padding.PKCS1v15(), rsa_hash())
        else:
            curve = _CURVE_NAME.get(key.curve.name, "")
            if fmt != f"ecdsa-sha2-{curve}":
                raise BadSignature(f"signature format {fmt} does not match the ECDSA key")
            inner = _Reader(sig)
            r, s = inner.mpint(), inner.mpint()
            if not inner.done() or r <= 0 or s <= 0:
                raise BadSignature("malformed ECDSA signature")
            key.verify(encode_dss_signature(r, s), payload, ec.ECDSA(_ecdsa_hash(curve)))
    except InvalidSignature:
        raise BadSignature(f"signature does not verify for key {fingerprint(key)}") from None
    except ValueError:
        raise BadSignature("malformed signature") from None


# -- SSHSIG --------------------------------------------------------------------------


def sign(private_key: PrivateKey, namespace: str, data: bytes, hash_alg: str = "sha512") -> str:
    """An armored SSHSIG signature of ``data`` in ``namespace``, as ``ssh-keygen -Y sign`` makes.

    Call it on the side that proves something (the console answering a login
    challenge, an approver signing an intent); send the returned text as is.
    """
    if not namespace:
        raise ValueError("an SSHSIG namespace must not be empty")
    if hash_alg not in _HASHES:
        raise ValueError(f"hash algorithm {hash_alg!r} is not sha256 or sha512")
    blob = (
        _MAGIC
        + struct.pack(">I", _SIG_VERSION)
        + _string(_public_blob(private_key.public_key()))
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(_raw_sign(private_key, _signed_data(namespace, hash_alg, data)))
    )
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def _dearmor(armored: str) -> bytes:
    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise BadSignature("not an armored SSH signature (BEGIN/END SSH SIGNATURE lines)")
    body = "".join(text[len(_ARMOR_BEGIN) : -len(_ARMOR_END)].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("the armored signature is not valid base64") from None


def verify(
    armored: str, namespace: str, data: bytes, allowed_public_keys: Iterable[PublicKey]
) -> PublicKey:
    """The key that signed ``data`` in ``namespace``, if it is one of ``allowed_public_keys``.

    Raises ``BadSignature`` for anything malformed, another namespace or a
    signature that does not verify, and ``UnknownKey`` (with the fingerprint)
    for a valid-looking signature by a key that is not allowed. Never raises
    anything else on hostile input.
    """
    if len(armored) > 64 * 1024:
        raise BadSignature("signature text is too long")
    blob = _dearmor(armored)
    try:
        reader = _Reader(blob)
        if reader.take(6) != _MAGIC:
            raise BadSignature("missing SSHSIG preamble")
        version = reader.uint32()
        if version != _SIG_VERSION:
            raise BadSignature(f"SSHSIG version {version} is not supported")
        key_blob = reader.string()
        signed_namespace = reader.string().decode("utf-8")
        reader.string()  # reserved
        hash_alg = reader.string().decode("ascii")
        sig_blob = reader.string()
        if not reader.done():
            raise BadSignature("trailing bytes after the signature")
    except (ValueError, UnicodeDecodeError):
        raise BadSignature("truncated or malformed SSHSIG structure") from None
    if signed_namespace != namespace:
        raise BadSignature(f"signature is for namespace {signed_namespace!r}, not {namespace!r}")
    if hash_alg not in _HASHES:
        raise BadSignature(f"hash algorithm {hash_alg!r} is not sha256 or sha512")
    try:
        key_type = _Reader(key_blob).string().decode("ascii")
        signer = load_public_key(
            f"{key_type} {base64.b64encode(key_blob).decode()}", where="signature"
        )
    except (ValueError, UnicodeDecodeError, InvalidKey):
        raise BadSignature("the signature carries an unreadable public key") from None
    allowed = next((k for k in allowed_public_keys if _public_blob(k) == key_blob), None)
    if allowed is None:
        raise UnknownKey(fingerprint(signer))
    _raw_verify(allowed, sig_blob, _signed_data(namespace, hash_alg, data))
    return allowed


# -- authorized_operators ---------------------------------------------------------------


def parse_authorized_operators(text: str, where: str) -> list[Operator]:
    """Every operator in an authorized_operators file's ``text``; ``where`` names the file.

    One operator per line: ``ROLE NAME KEYTYPE BASE64 [comment]``, e.g.
    ``admin alice ssh-ed25519 AAAAC3... alice@laptop``. Blank lines and lines
    starting with ``#`` are skipped. Any bad line raises ``InvalidOperators``
    naming the file and line, so a typo never silently locks someone out or in.
    """
    operators: list[Operator] = []
    seen_keys: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    roles = ", ".join(r.value for r in Role)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 4)
        if len(fields) < 4:
            raise InvalidOperators(where, number, "expected ROLE NAME KEYTYPE BASE64 [comment]")
        role_text, name, key_type, key_b64 = fields[:4]
        try:
            role = Role(role_text)
        except ValueError:
            raise InvalidOperators(
                where, number, f"unknown role {role_text!r} (expected one of {roles})"
            ) from None
        if not name.isprintable() or len(name) > 64:
            raise InvalidOperators(where, number, f"operator name {name!r} is not usable")
        try:
            key = load_public_key(f"{key_type} {key_b64}", where=f"{where}:{number}")
        except InvalidKey as exc:
            raise InvalidOperators(where, number, exc.details["why"]) from None
        fp = fingerprint(key)
        if fp in seen_keys:
            raise InvalidOperators(
                where, number, f"key {fp} is already given on line {seen_keys[fp]}"
            )
        if name in seen_names:
            raise InvalidOperators(
                where, number, f"operator {name!r} is already named on line {seen_names[name]}"
            )
        seen_keys[fp] = seen_names[name] = number
        operators.append(Operator(role=role, name=name, public_key=key, fingerprint=fp))
    return operators
