"""Two Connections wired back to back, no event loop (STYLE.md: the protocol core's tests)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.enums import Role
from shared.identity import Operator, fingerprint
from shared.protocol import (
    ChallengeBook,
    Connection,
    Event,
    HelloReceived,
    Limits,
    check_proof,
    make_client_hello,
    new_server_hello,
)

AGENT = "db1"
T0 = 1_800_000_000.0


def operator(name: str, role: Role) -> tuple[ed25519.Ed25519PrivateKey, Operator]:
    key = ed25519.Ed25519PrivateKey.generate()
    pub = key.public_key()
    return key, Operator(role=role, name=name, public_key=pub, fingerprint=fingerprint(pub))


class Pair:
    """A server and a client Connection, with the events each produced kept for asserts."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.server = Connection("server", limits=limits)
        self.client = Connection("client", limits=limits)
        self.book = ChallengeBook()
        self.server_events: list[Event] = []
        self.client_events: list[Event] = []

    def pump(self, now: float = T0) -> None:
        for _ in range(100):
            moved = False
            for src, dst in ((self.server, self.client), (self.client, self.server)):
                for frame in src.data_to_send():
                    dst.receive_text(frame, now)
                    moved = True
            for conn in (self.server, self.client):
                close = conn.close_requested()
                if close is not None and not getattr(conn, "_pumped_close", False):
                    conn._pumped_close = True  # type: ignore[attr-defined]
                    self.server.receive_closed(*close)
                    self.client.receive_closed(*close)
                    moved = True
            self.server_events += self.server.events_received()
            self.client_events += self.client.events_received()
            if not moved:
                return
        raise AssertionError("pump did not settle")

    def start(self, now: float = T0, ttl_s: float = 30.0) -> HelloReceived:
        """Server sends its hello; returns the client's HelloReceived."""
        hello = new_server_hello(
            agent=AGENT,
            agent_version="0.1",
            now=now,
            nonce=b"n" * 16 + now.hex().encode(),
            ttl_s=ttl_s,
        )
        self.book.issue(hello)
        self.server.send_hello(hello)
        self.pump(now)
        event = self.client_events.pop()
        assert isinstance(event, HelloReceived)
        return event

    def login(self, role: Role = Role.ADMIN, now: float = T0) -> Operator:
        """A full successful login as a fresh operator with ``role``."""
        key, op = operator("alice", role)
        got = self.start(now)
        self.client.send_hello(make_client_hello(got.hello, key, client="test"))  # type: ignore[arg-type]
        self.pump(now)
        event = self.server_events.pop()
        assert isinstance(event, HelloReceived)
        assert self.server.hello_sent is not None
        checked = check_proof(event.hello, self.server.hello_sent, [op], now=now, book=self.book)  # type: ignore[arg-type]
        self.server.accept(checked.name, checked.role)
        self.pump(now)
        return op
