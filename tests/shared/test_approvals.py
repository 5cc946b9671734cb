"""shared/approvals: the canonical run intent and the agent's checks, pure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.approvals import (
    INTENT_PREAMBLE,
    ApprovalRefused,
    ApprovalState,
    Approved,
    Reason,
    Refused,
    RunIntent,
    check_approval,
    check_withdrawal,
    intent_bytes,
)
from shared.enums import Role
from shared.identity import (
    APPROVAL_NAMESPACE,
    AUTH_NAMESPACE,
    Operator,
    parse_authorized_operators,
    public_key_line,
    sign,
)

NOW = 1_800_000_000.0
KEYS = {name: ed25519.Ed25519PrivateKey.generate() for name in ("alice", "bob", "vic", "mal")}
ROLES = {"alice": Role.OPERATOR, "bob": Role.APPROVER, "vic": Role.VIEWER}
OPERATORS = parse_authorized_operators(
    "".join(f"{ROLES[n]} {n} {public_key_line(KEYS[n])}\n" for n in ROLES), "ops"
)
INTENT = RunIntent(
    request_id="01REQ",
    agent="db1",
    job="backup",
    definition_hash="a" * 64,
    execution_id="01EXEC",
    params={"target": "prod"},
    requester="alice",
    requested_at=NOW - 60,
    expires_at=NOW + 3600,
    nonce="n" * 32,
)


def decide(
    *,
    intent: RunIntent = INTENT,
    signer: str = "bob",
    stored: RunIntent | None = INTENT,
    state: ApprovalState | None = ApprovalState.PENDING,
    agent: str = "db1",
    current_hash: str | None = "a" * 64,
    operators: list[Operator] = OPERATORS,
    nonce_used: bool = False,
    now: float = NOW,
    signature: str | None = None,
) -> Approved | Refused:
    sig = signature or sign(KEYS[signer], APPROVAL_NAMESPACE, intent_bytes(intent))
    return check_approval(
        intent=intent,
        signature=sig,
        stored=stored,
        state=state,
        agent=agent,
        current_hash=current_hash,
        operators=operators,
        nonce_used=nonce_used,
        now=now,
    )


def reason_of(verdict: Approved | Refused) -> Reason:
    assert isinstance(verdict, Refused), verdict
    return verdict.reason


def test_intent_bytes_are_canonical() -> None:
    """The signed bytes are the preamble and sorted-key compact JSON, whatever the field order."""
    shuffled = msgspec.json.decode(msgspec.json.encode(INTENT), type=RunIntent)
    data = intent_bytes(shuffled)
    assert data == intent_bytes(INTENT)
    body = data[len(INTENT_PREAMBLE) :].rstrip(b"\n")
    assert data.startswith(INTENT_PREAMBLE)
    assert list(msgspec.json.decode(body)) == sorted(msgspec.structs.asdict(INTENT))
    assert b" " not in body


def test_any_field_change_changes_the_bytes() -> None:
    """Every field of the intent is covered by the signature."""
    base = intent_bytes(INTENT)
    for name, value in msgspec.structs.asdict(INTENT).items():
        other = (
            {"x": "y"}
            if isinstance(value, dict)
            else (value + 1 if isinstance(value, float) else value + "x")
        )
        changed = msgspec.structs.replace(INTENT, **{name: other})
        assert intent_bytes(changed) != base, name


def test_valid_approval_is_accepted() -> None:
    """An approver who is not the requester, in time, for the current definition: approved."""
    verdict = decide()
    assert isinstance(verdict, Approved)
    assert verdict.approver.name == "bob"


def test_self_approval_is_refused() -> None:
    """The requester cannot approve their own run, even with the approver role."""
    ops = parse_authorized_operators(f"approver alice {public_key_line(KEYS['alice'])}\n", "o")
    assert reason_of(decide(signer="alice", operators=ops)) is Reason.SELF_APPROVAL


def test_viewer_signature_is_refused() -> None:
    """A signature by a viewer's key does not approve."""
    verdict = decide(signer="vic")
    assert reason_of(verdict) is Reason.NOT_APPROVER
    assert isinstance(verdict, Refused) and "vic" in verdict.message


def test_operator_signature_is_refused() -> None:
    """An operator (below approver) cannot approve."""
    other = msgspec.structs.replace(INTENT, requester="vic")
    assert reason_of(decide(intent=other, stored=other, signer="alice")) is Reason.NOT_APPROVER


def test_replayed_nonce_is_refused() -> None:
    """An approval whose nonce is in the nonce book is a replay."""
    assert reason_of(decide(nonce_used=True)) is Reason.REPLAYED


def test_approved_request_is_not_pending() -> None:
    """A request already decided cannot be approved again."""
    assert reason_of(decide(state=ApprovalState.REJECTED)) is Reason.NOT_PENDING


def test_expired_request_is_refused() -> None:
    """At or after expires_at the approval is refused."""
    assert reason_of(decide(now=INTENT.expires_at)) is Reason.EXPIRED


def test_changed_definition_is_refused() -> None:
    """If the job's definition hash moved since the request, the approval is refused."""
    verdict = decide(current_hash="b" * 64)
    assert reason_of(verdict) is Reason.JOB_CHANGED
    assert isinstance(verdict, Refused) and "aaaaaaaaaaaa -> bbbbbbbbbbbb" in verdict.message


def test_deleted_job_is_refused() -> None:
    """A request for a job that no longer exists cannot be approved."""
    assert reason_of(decide(current_hash=None)) is Reason.JOB_DELETED


def test_intent_for_another_agent_is_refused() -> None:
    """An intent naming another agent is refused by this one."""
    other = msgspec.structs.replace(INTENT, agent="db2")
    assert reason_of(decide(intent=other)) is Reason.WRONG_AGENT


def test_unknown_request_is_refused() -> None:
    """An agent with no such request refuses."""
    assert reason_of(decide(stored=None, state=None)) is Reason.UNKNOWN_REQUEST


def test_intent_differing_from_the_request_is_refused() -> None:
    """A signed intent that is not the stored one names the fields that differ."""
    forged = msgspec.structs.replace(INTENT, params={"target": "all"})
    verdict = decide(intent=forged)
    assert reason_of(verdict) is Reason.INTENT_MISMATCH
    assert isinstance(verdict, Refused) and "params" in verdict.message


def test_signature_over_other_bytes_is_refused() -> None:
    """A signature of another intent does not verify for this one."""
    other = msgspec.structs.replace(INTENT, nonce="m" * 32)
    sig = sign(KEYS["bob"], APPROVAL_NAMESPACE, intent_bytes(other))
    assert reason_of(decide(signature=sig)) is Reason.BAD_SIGNATURE


def test_signature_in_another_namespace_is_refused() -> None:
    """A login proof (auth namespace) can never pass as an approval."""
    sig = sign(KEYS["bob"], AUTH_NAMESPACE, intent_bytes(INTENT))
    assert reason_of(decide(signature=sig)) is Reason.BAD_SIGNATURE


def test_unknown_key_is_refused() -> None:
    """A key not in authorized_operators is refused with its fingerprint."""
    assert reason_of(decide(signer="mal")) is Reason.UNKNOWN_KEY


def test_garbage_signature_is_refused() -> None:
    """Malformed signature text is a refusal, not an exception."""
    assert reason_of(decide(signature="not a signature")) is Reason.BAD_SIGNATURE


def test_ssh_keygen_signature_is_accepted(tmp_path: Path) -> None:
    """ssh-keygen -Y sign -n approval@squ-cron over intent_bytes makes an accepted approval."""
    key_path = tmp_path / "id"
    key_path.write_bytes(
        KEYS["bob"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    (tmp_path / "intent").write_bytes(intent_bytes(INTENT))
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-n",
            APPROVAL_NAMESPACE,
            "-f",
            str(key_path),
            str(tmp_path / "intent"),
        ],
        check=True,
        capture_output=True,
    )
    sig = (tmp_path / "intent.sig").read_text()
    verdict = decide(signature=sig)
    assert isinstance(verdict, Approved)


def test_refusal_error_carries_the_reason() -> None:
    """ApprovalRefused names the request and travels with its reason code."""
    exc = ApprovalRefused(Refused(reason=Reason.EXPIRED, message="too late"), "01REQ")
    assert exc.to_dict() == {
        "code": "approval_refused",
        "message": "approval 01REQ refused: too late",
        "reason": "expired",
        "request_id": "01REQ",
    }


@pytest.mark.parametrize(
    ("by", "role", "cancelling", "reason"),
    [
        ("bob", Role.APPROVER, False, None),
        ("alice", Role.APPROVER, False, Reason.SELF_APPROVAL),
        ("vic", Role.OPERATOR, False, Reason.NOT_APPROVER),
        ("alice", Role.OPERATOR, True, None),
        ("root", Role.ADMIN, True, None),
        ("bob", Role.APPROVER, True, Reason.NOT_REQUESTER),
    ],
)
def test_withdrawal_rules(by: str, role: Role, cancelling: bool, reason: Reason | None) -> None:
    """Reject: an approver other than the requester; cancel: the requester or an admin."""
    verdict = check_withdrawal(
        state=ApprovalState.PENDING,
        request_id="01REQ",
        agent="db1",
        requester="alice",
        by=by,
        by_role=role,
        cancelling=cancelling,
    )
    assert (verdict.reason if verdict else None) is reason


def test_withdrawal_of_a_decided_request_is_refused() -> None:
    """A request that is no longer pending cannot be rejected."""
    verdict = check_withdrawal(
        state=ApprovalState.APPROVED,
        request_id="01REQ",
        agent="db1",
        requester="alice",
        by="bob",
        by_role=Role.APPROVER,
        cancelling=False,
    )
    assert verdict is not None and verdict.reason is Reason.NOT_PENDING
