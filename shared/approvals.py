"""Approvals, pure: the canonical run intent, the bytes an approver signs, and the checks.

DESIGN.md "Identity and security": an approval signs a canonical *run intent*
(job name and the hash of its definition, the target agent, the execution id,
parameters, requester, expiry and a nonce). The agent that runs the job, not
the console, decides: ``check_approval`` takes everything it needs as
arguments (the stored request, the operators, the job's current hash, the
time, whether the nonce was used) and returns ``Approved`` or ``Refused`` with
a stable reason code and a sentence. The agent records either outcome in the
audit log; ``agentd.approvals`` does the I/O around it.

The signature is OpenSSH SSHSIG in ``APPROVAL_NAMESPACE`` over
``intent_bytes(intent)``, so ``ssh-keygen -Y sign -n approval@squ-cron`` over
the same bytes (``squ approve ID --print-intent``) makes an acceptable approval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated

import msgspec

from shared.enums import Role
from shared.errors import SquError
from shared.identity import (
    APPROVAL_NAMESPACE,
    BadSignature,
    Operator,
    UnknownKey,
    fingerprint,
    verify,
)
from shared.models import Job

__all__ = [
    "INTENT_PREAMBLE",
    "MAX_EXPIRY_S",
    "ApprovalId",
    "ApprovalInfo",
    "ApprovalRefused",
    "ApprovalRequest",
    "ApprovalSign",
    "ApprovalState",
    "ApprovalWithdraw",
    "ApprovalsQuery",
    "ApprovalsResult",
    "Approved",
    "Reason",
    "Refused",
    "RunIntent",
    "check_approval",
    "check_withdrawal",
    "intent_bytes",
]

# Marks the signed bytes as ours and versions the encoding: a change of the canonical
# form bumps it, so an old signature can never be read as a new intent.
INTENT_PREAMBLE = b"squ-cron run intent v1\n"
# A request may wait at most a week: a forgotten approval must not stay signable forever.
MAX_EXPIRY_S = 7 * 24 * 3600.0


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Reason(StrEnum):
    """Why an approval was refused: stable codes, shown and audited."""

    WRONG_AGENT = "wrong_agent"
    UNKNOWN_REQUEST = "unknown_request"
    INTENT_MISMATCH = "intent_mismatch"
    REPLAYED = "replayed"
    NOT_PENDING = "not_pending"
    EXPIRED = "expired"
    JOB_CHANGED = "job_changed"
    JOB_DELETED = "job_deleted"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    NOT_REQUESTER = "not_requester"


class RunIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an approver signs: exactly one run of one job definition on one agent."""

    request_id: str
    agent: str
    job: str
    definition_hash: str
    execution_id: str
    params: dict[str, str] = {}
    requester: str
    requested_at: float
    expires_at: float
    nonce: str


class Approved(msgspec.Struct, frozen=True, kw_only=True):
    """The approval holds; ``approver`` is the operator whose key signed it."""

    approver: Operator


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    """The approval (or withdrawal) does not hold; ``message`` says why in words."""

    reason: Reason
    message: str


class ApprovalRefused(SquError):
    """The agent refused an approval, rejection or cancellation; carries the reason code."""

    code = "approval_refused"

    def __init__(self, refusal: Refused, request_id: str = "") -> None:
        super().__init__(
            f"approval {request_id} refused: {refusal.message}"
            if request_id
            else f"approval refused: {refusal.message}",
            reason=refusal.reason.value,
            request_id=request_id,
        )
        self.reason = refusal.reason


# -- wire messages (shared/protocol/catalogue.py names them) ---------------------------------

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Comment = Annotated[str, msgspec.Meta(max_length=2000)]


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ApprovalRequest(_Wire, frozen=True):
    """``approvals.request``: ask for a run of ``job`` that waits for someone else's sign-off."""

    job: Id
    params: dict[str, str] = {}
    target: str | None = None
    expires_in_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_EXPIRY_S)] = 3600.0
    comment: Comment = ""


class ApprovalId(_Wire, frozen=True):
    id: Id


class ApprovalsQuery(_Wire, frozen=True):
    """``approvals.list``: requests in ``state`` (None: every state), newest first."""

    state: ApprovalState | None = ApprovalState.PENDING
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class ApprovalSign(_Wire, frozen=True):
    """``approvals.approve``: the intent exactly as signed, and the armored SSHSIG signature."""

    intent: RunIntent
    signature: Annotated[str, msgspec.Meta(max_length=65536)]


class ApprovalWithdraw(_Wire, frozen=True):
    """``approvals.reject`` / ``approvals.cancel``: which request, and why."""

    id: Id
    comment: Comment = ""


class ApprovalInfo(_Wire, frozen=True):
    """A request as the agent records it, with what the approver must see before signing.

    ``definition`` is the job as it was when the request was made (its hash is
    in the intent); ``last_approved`` the definition of the last approved run of
    that job on this agent, so the console can show what changed since.
    """

    intent: RunIntent
    state: ApprovalState
    comment: str = ""
    decided_at: float | None = None
    decided_by: str = ""
    decision_comment: str = ""
    execution_status: str = ""
    definition: Job | None = None
    last_approved: Job | None = None
    seq: int = 0


class ApprovalsResult(_Wire, frozen=True):
    approvals: list[ApprovalInfo]


def intent_bytes(intent: RunIntent) -> bytes:
    """The canonical bytes to sign: the preamble, then the intent as compact sorted-key JSON.

    Same intent, same bytes, on every machine: keys sorted, no whitespace,
    floats in shortest round-trip form, UTF-8.
    """
    return INTENT_PREAMBLE + msgspec.json.encode(intent, order="sorted") + b"\n"


def check_approval(
    *,
    intent: RunIntent,
    signature: str,
    stored: RunIntent | None,
    state: ApprovalState | None,
    agent: str,
    current_hash: str | None,
    operators: Iterable[Operator],
    nonce_used: bool,
    now: float,
) -> Approved | Refused:
    """Decide an approval of ``intent`` signed by ``signature``; never raises on remote input.

    ``stored`` and ``state`` are the agent's own record of the request (None if
    it has none), ``current_hash`` the job's definition hash now (None if the
    job is gone), ``nonce_used`` whether the agent's nonce book has the
    intent's nonce. The checks run cheapest and most specific first, so the
    reason names the real problem.
    """
    if intent.agent != agent:
        return Refused(
            reason=Reason.WRONG_AGENT,
            message=f"the intent is for agent {intent.agent!r}, this is {agent!r}",
        )
    if stored is None or state is None:
        return Refused(
            reason=Reason.UNKNOWN_REQUEST,
            message=f"no approval request {intent.request_id!r} on agent {agent!r}",
        )
    if intent != stored:
        fields = _differing_fields(intent, stored)
        return Refused(
            reason=Reason.INTENT_MISMATCH,
            message=f"the signed intent differs from request {stored.request_id} in "
            f"{', '.join(fields)}",
        )
    if nonce_used:
        return Refused(
            reason=Reason.REPLAYED,
            message=f"nonce {intent.nonce} was already used: an approval counts once",
        )
    if state is not ApprovalState.PENDING:
        return Refused(
            reason=Reason.NOT_PENDING, message=f"request {intent.request_id} is {state.value}"
        )
    if now >= intent.expires_at:
        return Refused(
            reason=Reason.EXPIRED,
            message=f"request {intent.request_id} expired {now - intent.expires_at:.0f} s ago",
        )
    if current_hash is None:
        return Refused(
            reason=Reason.JOB_DELETED, message=f"job {intent.job!r} no longer exists on {agent!r}"
        )
    if current_hash != intent.definition_hash:
        return Refused(
            reason=Reason.JOB_CHANGED,
            message=f"job {intent.job!r} changed since the request "
            f"(definition {intent.definition_hash[:12]} -> {current_hash[:12]}); request again",
        )
    known = list(operators)
    try:
        key = verify(
            signature, APPROVAL_NAMESPACE, intent_bytes(intent), [o.public_key for o in known]
        )
    except UnknownKey as exc:
        return Refused(reason=Reason.UNKNOWN_KEY, message=exc.message)
    except BadSignature as exc:
        return Refused(reason=Reason.BAD_SIGNATURE, message=exc.message)
    signer = next(o for o in known if o.fingerprint == fingerprint(key))
    if not signer.role.allows(Role.APPROVER):
        return Refused(
            reason=Reason.NOT_APPROVER,
            message=f"signed by {signer.name}, a {signer.role.value}: approving needs the "
            "approver or admin role",
        )
    if signer.name == intent.requester:
        return Refused(
            reason=Reason.SELF_APPROVAL,
            message=f"{signer.name} requested this run and cannot also approve it",
        )
    return Approved(approver=signer)


def check_withdrawal(
    *,
    state: ApprovalState | None,
    request_id: str,
    agent: str,
    requester: str,
    by: str,
    by_role: Role,
    cancelling: bool,
) -> Refused | None:
    """Whether ``by`` may reject (``cancelling=False``) or cancel a request; None if so.

    Rejecting needs the approver role and is never done by the requester on
    their own run (that is a cancel). Cancelling is for the requester, or an admin.
    """
    if state is None:
        return Refused(
            reason=Reason.UNKNOWN_REQUEST,
            message=f"no approval request {request_id!r} on agent {agent!r}",
        )
    if state is not ApprovalState.PENDING:
        return Refused(reason=Reason.NOT_PENDING, message=f"request {request_id} is {state.value}")
    if cancelling:
        if by != requester and not by_role.allows(Role.ADMIN):
            return Refused(
                reason=Reason.NOT_REQUESTER,
                message=f"only {requester or 'the requester'} or an admin may cancel {request_id}",
            )
        return None
    if not by_role.allows(Role.APPROVER):
        return Refused(
            reason=Reason.NOT_APPROVER,
            message=f"{by} is a {by_role.value}: rejecting needs the approver or admin role",
        )
    if by == requester:
        return Refused(
            reason=Reason.SELF_APPROVAL,
            message=f"{by} requested this run: cancel it instead of rejecting it",
        )
    return None


def _differing_fields(a: RunIntent, b: RunIntent) -> list[str]:
    left: Mapping[str, object] = msgspec.structs.asdict(a)
    right: Mapping[str, object] = msgspec.structs.asdict(b)
    return [name for name in left if left[name] != right[name]]
