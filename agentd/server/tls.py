"""The agent's TLS certificate: made once by ``squ-agentd init``, pinned by consoles.

``ensure_certificate(cert_path, key_path, hostname)`` makes a self-signed
ECDSA P-256 certificate and key (written 0600, atomically) unless both exist,
and returns the certificate's SHA-256 fingerprint, which ``init`` prints and a
console pins the first time it connects (DESIGN.md: like SSH's known_hosts).
P-256 rather than Ed25519 because every TLS stack (and OpenSSL's default
security level) takes it. ``server_context`` builds the ``ssl.SSLContext``
for ``serve``; ``require_safe_listen`` refuses plain ws:// off loopback.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import ssl
from pathlib import Path

from agentd.fsutil import write_atomic
from shared.errors import SquError

# cryptography is imported only where a certificate is made or parsed (init, doctor):
# serving loads the existing pair with stdlib ssl, and the import would cost an idle
# agent ~7-8 MB of RSS (issue 8; docs/decisions/0003-daemon.md, 2026-11-27).

__all__ = [
    "InsecureListen",
    "TlsError",
    "certificate_fingerprint",
    "der_fingerprint",
    "ensure_certificate",
    "is_loopback",
    "require_safe_listen",
    "server_context",
]

# Long-lived on purpose: the console pins this exact certificate, so expiry would
# only force a re-pin; rotating it is an explicit `squ-agentd init --new-cert`.
VALID_DAYS = 20 * 365


class TlsError(SquError):
    code = "tls_error"

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}", path=str(path))


class InsecureListen(SquError):
    """Plain ws:// asked for on an address other than loopback."""

    code = "insecure_listen"

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refusing plain ws:// on {host!r}: without TLS only loopback (127.0.0.1, ::1, "
            "localhost) is allowed; give the agent its certificate (squ-agentd init)",
            host=host,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe_listen(host: str, ssl_context: ssl.SSLContext | None) -> None:
    """Raise ``InsecureListen`` for ws:// (no TLS) off loopback; call before listening."""
    if ssl_context is None and not is_loopback(host):
        raise InsecureListen(host)


def certificate_fingerprint(cert_pem: bytes) -> str:
    """``SHA256:<base64>`` of the certificate's DER bytes (what a console pins).

    Written like an OpenSSH key fingerprint (base64, no padding), which operators
    already know how to compare; ``der_fingerprint`` gives the same from DER bytes.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return der_fingerprint(der)


def der_fingerprint(der: bytes) -> str:
    """``SHA256:<base64>`` of a DER certificate, e.g. ``ssl_object.getpeercert(True)``."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def ensure_certificate(
    cert_path: Path, key_path: Path, hostname: str, *, now: dt.datetime | None = None
) -> str:
    """Make the agent's certificate and key unless both exist; returns the fingerprint.

    Idempotent: an existing pair is kept (its fingerprint is what consoles
    pinned). Only one of the two existing is an error, never silently replaced.
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    if cert_path.exists() and key_path.exists():
        return certificate_fingerprint(cert_path.read_bytes())
    if cert_path.exists() or key_path.exists():
        missing = key_path if cert_path.exists() else cert_path
        raise TlsError(missing, "is missing while its pair exists; restore it or remove both")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = now or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if is_loopback(hostname) or hostname == "localhost":
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    write_atomic(cert_path, pem)
    return certificate_fingerprint(pem)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The TLS context for ``serve``: TLS 1.2+, the agent's own certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(Path(cert_path), f"cannot load certificate and key ({exc})") from None
    return context
