"""Login by signed challenge (shared/protocol/auth.py): every refusal has its own code."""

from __future__ import annotations

import re

import pytest

from shared.enums import Role
from shared.identity import BadSignature, UnknownKey
from shared.protocol import (
    ChallengeBook,
    ClientHello,
    ExpiredProof,
    ReplayedProof,
    ServerHello,
    check_proof,
    error_code_for,
    make_client_hello,
    new_server_hello,
)
from tests.shared.protocol_helpers import T0, operator


def hello(now: float = T0, nonce: bytes = b"0123456789abcdef") -> ServerHello:
    return new_server_hello(agent="db1", agent_version="0.1", now=now, nonce=nonce, ttl_s=30)


def issued(book: ChallengeBook, **kw: object) -> ServerHello:
    sent = hello(**kw)  # type: ignore[arg-type]
    book.issue(sent)
    return sent


def test_valid_proof_returns_the_operator() -> None:
    """A proof by a listed key returns that operator with its role."""
    key, op = operator("alice", Role.APPROVER)
    book = ChallengeBook()
    sent = issued(book)
    got = check_proof(make_client_hello(sent, key, client="t"), sent, [op], now=T0 + 1, book=book)
    assert (got.name, got.role) == ("alice", Role.APPROVER)


def test_unknown_key_is_refused_with_fingerprint() -> None:
    """A proof by a key not in authorized_operators: 'unknown_key' naming its fingerprint."""
    key, op = operator("mallory", Role.ADMIN)
    _, listed = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    with pytest.raises(UnknownKey, match=re.escape(op.fingerprint)):
        check_proof(make_client_hello(sent, key, client="t"), sent, [listed], now=T0, book=book)


def test_bad_signature_is_refused() -> None:
    """A proof that does not verify for the claimed key is 'bad_signature'."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    other = hello(nonce=b"fedcba9876543210")
    forged = make_client_hello(other, key, client="t")  # signs another challenge
    answer = ClientHello(
        version=1,
        client="t",
        public_key=forged.public_key,
        challenge=sent.challenge,
        proof=forged.proof,
    )
    with pytest.raises(BadSignature) as caught:
        check_proof(answer, sent, [op], now=T0, book=book)
    assert error_code_for(caught.value) == "bad_signature"


def test_expired_proof_is_refused() -> None:
    """A proof that arrives after the challenge's expiry is 'expired_proof'."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    answer = make_client_hello(sent, key, client="t")
    with pytest.raises(ExpiredProof, match=r"31\.0 s after the challenge"):
        check_proof(answer, sent, [op], now=T0 + 31, book=book)


def test_proof_for_another_connection_is_replayed() -> None:
    """A proof made for another connection's challenge is 'replayed_proof'."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    first = issued(book)
    second = issued(book, nonce=b"another-nonce-16")
    captured = make_client_hello(first, key, client="t")
    check_proof(captured, first, [op], now=T0, book=book)
    with pytest.raises(ReplayedProof, match="another connection's challenge"):
        check_proof(captured, second, [op], now=T0, book=book)


def test_same_challenge_twice_is_replayed() -> None:
    """A challenge can be used to log in once."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    answer = make_client_hello(sent, key, client="t")
    check_proof(answer, sent, [op], now=T0, book=book)
    with pytest.raises(ReplayedProof, match="already used"):
        check_proof(answer, sent, [op], now=T0, book=book)


def test_never_issued_challenge_is_refused() -> None:
    """A proof for a challenge this agent never issued is refused."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    foreign = make_client_hello(hello(nonce=b"not-ours-at-all!"), key, client="t")
    with pytest.raises(ReplayedProof, match="never issued"):
        check_proof(foreign, sent, [op], now=T0, book=book)


def test_claimed_key_must_be_the_signer() -> None:
    """hello.public_key must be the key that signed the proof."""
    key, op = operator("alice", Role.ADMIN)
    other_key, other = operator("bob", Role.VIEWER)
    book = ChallengeBook()
    sent = issued(book)
    real = make_client_hello(sent, key, client="t")
    lying = make_client_hello(sent, other_key, client="t")
    answer = ClientHello(
        version=1,
        client="t",
        public_key=lying.public_key,
        challenge=sent.challenge,
        proof=real.proof,
    )
    with pytest.raises(BadSignature, match="another key"):
        check_proof(answer, sent, [op, other], now=T0, book=book)


def test_garbage_public_key_is_bad_signature() -> None:
    """An unreadable public key in hello is refused cleanly."""
    key, op = operator("alice", Role.ADMIN)
    book = ChallengeBook()
    sent = issued(book)
    real = make_client_hello(sent, key, client="t")
    answer = ClientHello(
        version=1,
        client="t",
        public_key="ssh-ed25519 ???",
        challenge=sent.challenge,
        proof=real.proof,
    )
    with pytest.raises(BadSignature):
        check_proof(answer, sent, [op], now=T0, book=book)


def test_book_forgets_expired_challenges() -> None:
    """ChallengeBook stays bounded: expired challenges are dropped."""
    book = ChallengeBook()
    for i in range(10):
        issued(book, nonce=f"nonce-{i:010d}".encode())
    assert len(book) == 10
    book.forget_expired(T0 + 31)
    assert len(book) == 0
