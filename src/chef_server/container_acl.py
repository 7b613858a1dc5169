"""Who may do what on an org's containers (cookbooks, sandboxes, policies, ...): the default org ACLs.

Decided from org_policy.DEFAULT_ACES and the requestor's groups, so the rules live in one place (data).
Per-object ACLs replace this in a later part.
"""

from __future__ import annotations

from .authn import Requestor
from .authz import deny
from .org_policy import DEFAULT_ACES


def _grants() -> dict[str, dict[str, frozenset[str]]]:
    """container -> group -> permissions the group has on it by default."""
    grants: dict[str, dict[str, set[str]]] = {}
    for objects, perms, grantees in DEFAULT_ACES:
        for kind, name in objects:
            if kind != "container":
                continue
            for grantee_kind, group in grantees:
                if grantee_kind == "group":
                    grants.setdefault(name, {}).setdefault(group, set()).update(perms)
    return {c: {g: frozenset(p) for g, p in groups.items()} for c, groups in grants.items()}


GRANTS = _grants()


def may(requestor: Requestor, container: str, perm: str) -> bool:
    if requestor.superuser:
        return True
    groups = GRANTS.get(container, {})
    return any(perm in groups.get(group, ()) for group in requestor.groups)


def require(requestor: Requestor, container: str, perm: str) -> None:
    """erchef's 403 "missing <perm> permission" unless the requestor's groups grant `perm` on `container`."""
    if not may(requestor, container, perm):
        deny(perm)
