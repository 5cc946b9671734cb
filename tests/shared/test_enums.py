"""Roles are ordered viewer < operator < approver < admin; coordinator is a side role."""

from __future__ import annotations

import pytest

from shared.enums import Role


@pytest.mark.parametrize(
    ("have", "need", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.OPERATOR, Role.VIEWER, True),
        (Role.OPERATOR, Role.APPROVER, False),
        (Role.APPROVER, Role.OPERATOR, True),
        (Role.APPROVER, Role.ADMIN, False),
        (Role.ADMIN, Role.APPROVER, True),
        (Role.ADMIN, Role.COORDINATOR, True),
        (Role.COORDINATOR, Role.OPERATOR, True),
        (Role.COORDINATOR, Role.APPROVER, False),
        (Role.COORDINATOR, Role.ADMIN, False),
        (Role.OPERATOR, Role.COORDINATOR, False),
    ],
)
def test_role_allows(have: Role, need: Role, allowed: bool) -> None:
    """A role may do what its rank allows; a coordinator may run steps but never approve."""
    assert have.allows(need) is allowed
