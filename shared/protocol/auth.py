"""Login by challenge: the agent sends a nonce, the operator signs it with an SSH key.

Flow (docs/security.md): the agent's ``ServerHello`` carries a fresh random
challenge and its expiry; the client answers with ``ClientHello`` holding its
OpenSSH public key and an SSHSIG (namespace ``AUTH_NAMESPACE``) over
``proof_payload(agent, challenge)``; the agent calls ``check_proof`` which
returns the ``Operator`` from authorized_operators or raises a ``SquError``
whose code says why (unknown_key, bad_signature, expired_proof,
replayed_proof). ``ChallengeBook`` remembers what was issued and used, so a
proof made for one connection is refused on another. Pure: time and
randomness are passed in.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.errors import SquError
from shared.identity import (
    AUTH_NAMESPACE,
    BadSignature,
    InvalidKey,
    Operator,
    fingerprint,
    load_public_key,
    public_key_line,
    sign,
    verify,
)
from shared.protocol.messages import PROTOCOL_VERSION, ClientHello, ServerHello

if TYPE_CHECKING:
    # Annotation only: the name would load cryptography at import (see shared/identity.py).
    from shared.identity import PrivateKey

__all__ = [
    "ChallengeBook",
    "ExpiredProof",
    "ReplayedProof",
    "check_proof",
    "make_client_hello",
    "new_server_hello",
    "proof_payload",
]


class ExpiredProof(SquError):
    code = "expired_proof"

    def __init__(self, age_s: float, ttl_s: float) -> None:
        super().__init__(
            f"login proof arrived {age_s:.1f} s after the challenge; challenges expire after "
            f"{ttl_s:g} s (is the clock or the link slow?)",
            age_s=age_s,
        )


class ReplayedProof(SquError):
    code = "replayed_proof"

    def __init__(self, why: str) -> None:
        super().__init__(f"login proof refused: {why}", why=why)


def proof_payload(agent: str, challenge: str) -> bytes:
    """The exact bytes an operator signs to log in to ``agent``."""
    return f"squ-cron login v{PROTOCOL_VERSION}\nagent={agent}\nchallenge={challenge}\n".encode()


def new_server_hello(
    *, agent: str, agent_version: str, now: float, nonce: bytes, ttl_s: float
) -> ServerHello:
    """The agent's first frame for a new connection; ``nonce`` is 32 fresh random bytes."""
    if len(nonce) < 16:
        raise ValueError("a challenge nonce needs at least 16 random bytes")
    return ServerHello(
        version=PROTOCOL_VERSION,
        agent=agent,
        agent_version=agent_version,
        challenge=base64.urlsafe_b64encode(nonce).decode().rstrip("="),
        issued_at=now,
        expires_at=now + ttl_s,
    )


def make_client_hello(hello: ServerHello, private_key: PrivateKey, *, client: str) -> ClientHello:
    """The client's answer to the agent's ``hello``: sign its challenge with ``private_key``."""
    return ClientHello(
        version=PROTOCOL_VERSION,
        client=client,
        public_key=public_key_line(private_key),
        challenge=hello.challenge,
        proof=sign(private_key, AUTH_NAMESPACE, proof_payload(hello.agent, hello.challenge)),
    )


class ChallengeBook:
    """Challenges this agent issued and which were used; forgets them once expired.

    One per server (shared by all its connections). ``issue`` when sending a
    hello, ``redeem`` when a proof for it checks out.
    """

    def __init__(self) -> None:
        self._issued: dict[str, float] = {}  # challenge -> expires_at
        self._used: dict[str, float] = {}

    def issue(self, hello: ServerHello) -> None:
        self._issued[hello.challenge] = hello.expires_at

    def was_issued(self, challenge: str) -> bool:
        return challenge in self._issued or challenge in self._used

    def redeem(self, challenge: str) -> None:
        """Mark ``challenge`` used; raises ReplayedProof if it was used before."""
        if challenge in self._used:
            raise ReplayedProof("this challenge was already used to log in")
        self._used[challenge] = self._issued.pop(challenge, 0.0)

    def forget_expired(self, now: float) -> None:
        """Drop what can no longer be presented (keeps the book bounded)."""
        # A used challenge is kept until its expiry: after that it fails as expired anyway.
        self._issued = {c: t for c, t in self._issued.items() if t >= now}
        self._used = {c: t for c, t in self._used.items() if t >= now}

    def __len__(self) -> int:
        return len(self._issued) + len(self._used)


def check_proof(
    hello: ClientHello,
    sent: ServerHello,
    operators: Sequence[Operator],
    *,
    now: float,
    book: ChallengeBook,
) -> Operator:
    """The operator who made ``hello`` in answer to ``sent``, or a SquError saying why not."""
    if hello.challenge != sent.challenge:
        if book.was_issued(hello.challenge):
            raise ReplayedProof("the proof answers another connection's challenge")
        raise ReplayedProof("the proof answers a challenge this agent never issued")
    if now > sent.expires_at:
        raise ExpiredProof(now - sent.issued_at, sent.expires_at - sent.issued_at)
    try:
        claimed = load_public_key(hello.public_key, where="hello.public_key")
    except InvalidKey as exc:
        raise BadSignature(exc.message) from None
    by_key = {op.fingerprint: op for op in operators}
    signer = verify(
        hello.proof,
        AUTH_NAMESPACE,
        proof_payload(sent.agent, sent.challenge),
        [op.public_key for op in operators],
    )
    if fingerprint(signer) != fingerprint(claimed):
        raise BadSignature("the proof is signed by another key than hello.public_key")
    book.redeem(hello.challenge)
    return by_key[fingerprint(signer)]
