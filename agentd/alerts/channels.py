"""The three ways an alert leaves the agent: webhook, command, email.

``make_channel(name, config, data_dir=..., agent=...)`` builds one;
``await channel.send(body, recipients)`` delivers one message (the JSON body of
``shared.alerts.message_body``) or raises ``DeliveryFailed`` saying why, and
the delivery loop records the attempt and retries with backoff. A channel
never retries by itself: the store is what makes a delivery survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from agentd.alerts.config import ChannelConfig, CommandConfig, EmailConfig, WebhookConfig
from shared import alerts as rules
from shared.errors import SquError

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = [
    "Channel",
    "CommandChannel",
    "DeliveryFailed",
    "EmailChannel",
    "WebhookChannel",
    "make_channel",
]

# What a receiver may answer with before we stop reading: a status line and headers.
_MAX_RESPONSE_BYTES = 64 * 1024
_KILL_GRACE_S = 5.0
_COMMAND_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DeliveryFailed(SquError):
    """One attempt to deliver a message failed; ``why`` is recorded on the delivery."""

    code = "delivery_failed"

    def __init__(self, channel: str, why: str) -> None:
        super().__init__(f"channel {channel}: {why}", channel=channel)
        self.why = why


class Channel(Protocol):
    name: str

    async def send(self, body: Mapping[str, Any], recipients: Sequence[str] = ()) -> None: ...


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookChannel:
    """HTTP/1.1 POST over asyncio (http or https); any 2xx is delivered, anything else fails."""

    def __init__(self, name: str, config: WebhookConfig, *, agent: str) -> None:
        self.name = name
        self.config = config
        self.agent = agent
        url = urllib.parse.urlsplit(config.url)
        self._tls = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if self._tls else 80)
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._host_header = url.netloc.rsplit("@", 1)[-1]

    async def send(self, body: Mapping[str, Any], recipients: Sequence[str] = ()) -> None:
        data = _encode(body)
        headers = {
            "Host": self._host_header,
            "User-Agent": "squ-agentd",
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "Connection": "close",
            "X-Squ-Agent": self.agent,
            "X-Squ-Message-Id": str(body.get("message_id", "")),
            **self.config.headers,
        }
        if self.config.secret:
            headers["X-Squ-Signature"] = rules.sign_body(data, self.config.secret)
        head = f"POST {self._target} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        try:
            status = await asyncio.wait_for(
                self._exchange(head.encode("latin-1") + b"\r\n" + data), self.config.timeout_s
            )
        except TimeoutError:
            raise DeliveryFailed(
                self.name, f"no answer within {self.config.timeout_s:g} s"
            ) from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise DeliveryFailed(self.name, f"{self.config.url}: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(self.name, f"{self.config.url} answered HTTP {status}")

    async def _exchange(self, request: bytes) -> int:
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.open_connection(
            self._host, self._port, ssl=context, limit=_MAX_RESPONSE_BYTES
        )
        try:
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
            parts = line.decode("latin-1").split()
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ValueError(f"not an HTTP response: {line[:80]!r}")
            return int(parts[1])
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


class CommandChannel:
    """Runs ``command`` (no shell) with the body as JSON on stdin and ``SQU_ALERT_*`` in env.

    Job-like supervision: a clean environment, its own session (so the whole
    group is stopped), stdin from a file (never a pipe the agent keeps), output
    to a log file under ``DATA/alerts/``, a timeout with SIGTERM then SIGKILL.
    Exit 0 is delivered; anything else fails and is retried.
    """

    def __init__(self, name: str, config: CommandConfig, *, data_dir: Path) -> None:
        self.name = name
        self.config = config
        self.dir = Path(data_dir) / "alerts"

    async def send(self, body: Mapping[str, Any], recipients: Sequence[str] = ()) -> None:
        env = {"PATH": _COMMAND_PATH, "LANG": "C.UTF-8", **rules.command_env(body)}
        if recipients:
            env["SQU_ALERT_EMAIL_TO"] = ",".join(recipients)
        log_path = self.dir / f"{self.name}.log"
        stdin, log = await asyncio.to_thread(self._open_files, _encode(body), log_path)
        try:
            code = await self._run(env, stdin, log)
        finally:
            stdin.close()
            log.close()
        if code != 0:
            raise DeliveryFailed(
                self.name, f"{self.config.command[0]} exited with {code} (output in {log_path})"
            )

    def _open_files(self, data: bytes, log_path: Path) -> tuple[IO[bytes], IO[bytes]]:
        """stdin as an unlinked temp file holding the body; the channel's append-only log."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        stdin = tempfile.TemporaryFile(dir=self.dir)
        stdin.write(data)
        stdin.seek(0)
        return stdin, open(log_path, "ab")

    async def _run(self, env: dict[str, str], stdin: IO[bytes], log: IO[bytes]) -> int:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.config.command,
                stdin=stdin,
                stdout=log,
                stderr=log,
                env=env,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryFailed(self.name, f"cannot run {self.config.command[0]}: {exc}") from None
        try:
            return await asyncio.wait_for(proc.wait(), self.config.timeout_s)
        except TimeoutError:
            await _stop_group(proc)
            raise DeliveryFailed(
                self.name, f"{self.config.command[0]} ran past {self.config.timeout_s:g} s"
            ) from None
        except asyncio.CancelledError:
            await _stop_group(proc)
            raise


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the command's whole session, SIGKILL after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, _KILL_GRACE_S), (signal.SIGKILL, _KILL_GRACE_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), wait_s)
            return
        except TimeoutError:
            continue


class EmailChannel:
    """SMTP (smtplib in a thread): STARTTLS or implicit TLS, optional login, plain text + JSON."""

    def __init__(self, name: str, config: EmailConfig, *, agent: str) -> None:
        self.name = name
        self.config = config
        self.sender = config.sender or f"squ-agentd@{agent}"

    async def send(self, body: Mapping[str, Any], recipients: Sequence[str] = ()) -> None:
        to = list(recipients) or list(self.config.to)
        if not to:
            raise DeliveryFailed(self.name, "no recipients (set to, or the job's email_to)")
        # Imported on the first email, not at start: an idle agent never needs smtplib
        # (issue 8: idle RSS).
        import smtplib

        message = self._message(body, to)
        try:
            await asyncio.to_thread(self._send_sync, message, to)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(
                self.name, f"{self.config.host}:{self.config.port}: {exc}"
            ) from None

    def _message(self, body: Mapping[str, Any], to: list[str]) -> EmailMessage:
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = f"[squ-cron] {body['summary']}"[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Message-ID"] = f"<{body['message_id']}@{body['agent']}>"
        lines = [str(a["summary"]) for a in body["alerts"]]
        text = "\n".join(lines) + "\n\n-- \nThe alert as JSON (docs/alerts.md):\n"
        message.set_content(text + json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        return message

    def _send_sync(self, message: EmailMessage, to: list[str]) -> None:
        import smtplib

        config = self.config
        context = ssl.create_default_context(cafile=config.ca_file or None)
        smtp: smtplib.SMTP
        if config.tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            if config.tls == "starttls":
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message, from_addr=self.sender, to_addrs=to)


def make_channel(name: str, config: ChannelConfig, *, data_dir: Path, agent: str) -> Channel:
    """The channel ``config`` describes (already checked by ``parse_alerts``)."""
    if isinstance(config, WebhookConfig):
        return WebhookChannel(name, config, agent=agent)
    if isinstance(config, CommandConfig):
        return CommandChannel(name, config, data_dir=data_dir)
    return EmailChannel(name, config, agent=agent)
