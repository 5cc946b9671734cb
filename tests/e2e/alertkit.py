"""Local alert receivers on 127.0.0.1 for the alert tests: HTTP (webhook) and SMTP (aiosmtpd).

``HttpReceiver()`` records every POST (headers, JSON body); ``stop()`` takes it
down (connections are refused) and ``start()`` brings it back on the same port.
``SmtpReceiver()`` records every message an aiosmtpd server accepts.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpReceiver:
    """A webhook receiver: every POST is kept as (headers, raw body, parsed JSON)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[dict[str, str], bytes, Any]] = []
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.posts.append((dict(self.headers), data, json.loads(data)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, in order, across single messages and digests."""
        with self._lock:
            return [a for _, _, body in self.posts for a in body["alerts"]]

    def kinds(self, job: str) -> list[str]:
        return [a["kind"] for a in self.alerts() if a["job"] == job]


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.receiver.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on 127.0.0.1 keeping (recipients, message) pairs."""

    def __init__(self, **controller_kw: Any) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.port = free_port()
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **controller_kw
        )
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON body carried at the end of each message's text."""
        out = []
        for _, message in self.messages:
            text = message.get_content().replace("\r\n", "\n")
            out.append(json.loads(text.split("The alert as JSON (docs/alerts.md):\n", 1)[1]))
        return out
