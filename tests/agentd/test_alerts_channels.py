"""agentd/alerts/channels against real receivers on 127.0.0.1: webhook, command, email."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentd.alerts.channels import (
    CommandChannel,
    DeliveryFailed,
    EmailChannel,
    WebhookChannel,
)
from agentd.alerts.config import CommandConfig, EmailConfig, WebhookConfig
from tests.e2e.agentkit import wait_for
from tests.e2e.alertkit import HttpReceiver, SmtpReceiver, free_port

BODY: dict[str, Any] = {
    "version": 1, "type": "alert", "agent": "db1", "job": "backup", "message_id": "m1",
    "sent_at": "2026-09-21T14:13:20.000+00:00", "count": 1, "summary": "backup on db1 failed",
    "alerts": [{"id": "E1.failed", "kind": "failed", "execution_id": "E1", "status": "failed",
                "summary": "backup on db1 failed"}],
}  # fmt: skip


async def test_webhook_posts_signed_json() -> None:
    """The webhook POSTs the body with X-Squ-Signature = sha256 HMAC of the exact bytes."""
    receiver = HttpReceiver()
    try:
        channel = WebhookChannel("hook", WebhookConfig(url=receiver.url, secret="s3"), agent="db1")
        await channel.send(BODY)
        ((headers, raw, body),) = receiver.posts
        expected = hmac.new(b"s3", raw, hashlib.sha256).hexdigest()
        assert headers["X-Squ-Signature"] == f"sha256={expected}"
        assert body == BODY and headers["Content-Type"] == "application/json"
    finally:
        receiver.stop()


async def test_webhook_error_status_is_a_failed_delivery() -> None:
    """A non-2xx answer is a failure naming the status."""
    receiver = HttpReceiver(status=503)
    try:
        channel = WebhookChannel("hook", WebhookConfig(url=receiver.url), agent="db1")
        with pytest.raises(DeliveryFailed, match="HTTP 503"):
            await channel.send(BODY)
    finally:
        receiver.stop()


async def test_webhook_refused_is_a_failed_delivery() -> None:
    """Nobody listening is a failure naming the URL, not a crash."""
    url = f"http://127.0.0.1:{free_port()}/x"
    channel = WebhookChannel("hook", WebhookConfig(url=url, timeout_s=2), agent="db1")
    with pytest.raises(DeliveryFailed, match=f"channel hook: {url}"):
        await channel.send(BODY)


def _script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "notify"
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_command_gets_json_on_stdin_and_env(tmp_path: Path) -> None:
    """The command reads the body on stdin and SQU_ALERT_* from a clean environment."""
    out = tmp_path / "out"
    script = _script(tmp_path, f"cat > {out}.json; env > {out}.env\n")
    channel = CommandChannel("page", CommandConfig(command=(script,)), data_dir=tmp_path)
    await channel.send(BODY)
    assert json.loads((tmp_path / "out.json").read_text()) == BODY
    env = dict(line.split("=", 1) for line in (tmp_path / "out.env").read_text().splitlines())
    assert env["SQU_ALERT_KIND"] == "failed" and env["SQU_ALERT_JOB"] == "backup"
    assert "HOME" not in env or env["HOME"] != os.environ.get("HOME")


async def test_command_past_its_timeout_is_killed_and_failed(tmp_path: Path) -> None:
    """A hanging command is stopped (its whole group) and the delivery fails."""
    pidfile = tmp_path / "pid"
    script = _script(tmp_path, f"sleep 30 & echo $! > {pidfile}; wait\n")
    config = CommandConfig(command=(script,), timeout_s=0.5)
    with pytest.raises(DeliveryFailed, match=r"ran past 0\.5 s"):
        await CommandChannel("page", config, data_dir=tmp_path).send(BODY)
    pid = int(pidfile.read_text())
    # Killed: gone, or a zombie waiting for whichever process adopted it to reap it.
    wait_for(lambda: _gone(pid), what=f"pid {pid} to be killed")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_command_nonzero_exit_fails(tmp_path: Path) -> None:
    """Exit status other than 0 is a failed delivery naming the code."""
    config = CommandConfig(command=(_script(tmp_path, "exit 4\n"),))
    with pytest.raises(DeliveryFailed, match="exited with 4"):
        await CommandChannel("page", config, data_dir=tmp_path).send(BODY)


async def test_email_is_sent_over_smtp() -> None:
    """The email channel sends a message with the summary as subject and the JSON body."""
    smtp = SmtpReceiver()
    try:
        config = EmailConfig(host="127.0.0.1", port=smtp.port, tls="none", to=("ops@example.org",))
        await EmailChannel("mail", config, agent="db1").send(BODY)
        ((rcpt, message),) = smtp.messages
        assert rcpt == ["ops@example.org"]
        assert message["Subject"] == "[squ-cron] backup on db1 failed"
        assert smtp.bodies() == [BODY]
    finally:
        smtp.stop()


async def test_email_job_recipients_override_the_channel() -> None:
    """Recipients passed by the loop (email_to, crontab MAILTO) replace the channel's."""
    smtp = SmtpReceiver()
    try:
        config = EmailConfig(host="127.0.0.1", port=smtp.port, tls="none", to=("ops@example.org",))
        await EmailChannel("mail", config, agent="db1").send(BODY, ["dba@example.org"])
        assert smtp.messages[0][0] == ["dba@example.org"]
    finally:
        smtp.stop()


async def test_email_starttls_refused_by_plain_server_fails() -> None:
    """STARTTLS against a server without it is a failed delivery, never a plain-text send."""
    smtp = SmtpReceiver()
    try:
        config = EmailConfig(host="127.0.0.1", port=smtp.port, to=("ops@example.org",))
        with pytest.raises(DeliveryFailed, match="STARTTLS"):
            await EmailChannel("mail", config, agent="db1").send(BODY)
        assert smtp.messages == []
    finally:
        smtp.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), as a private relay would have."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "relay.crt", tmp_path / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_email_over_starttls_with_login(tmp_path: Path) -> None:
    """STARTTLS to a relay with its own CA, then AUTH: the message arrives encrypted."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        logins.append((auth.login, auth.password))
        return AuthResult(success=auth.login == b"squ" and auth.password == b"pw")

    smtp = SmtpReceiver(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    try:
        config = EmailConfig(
            host="127.0.0.1", port=smtp.port, username="squ", password="pw",
            ca_file=str(cert), to=("ops@example.org",),
        )  # fmt: skip
        await EmailChannel("mail", config, agent="db1").send(BODY)
        assert logins == [(b"squ", b"pw")]
        assert smtp.bodies() == [BODY]
    finally:
        smtp.stop()


async def test_email_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    """A relay whose certificate we do not trust is a failed delivery, nothing sent."""
    import ssl

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    smtp = SmtpReceiver(tls_context=server_tls, require_starttls=True)
    try:
        config = EmailConfig(host="127.0.0.1", port=smtp.port, to=("ops@example.org",))
        with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await EmailChannel("mail", config, agent="db1").send(BODY)
        assert smtp.messages == []
    finally:
        smtp.stop()
