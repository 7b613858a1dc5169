"""Who may do what. For now erchef's default rules for the objects of part 1, decided from the requestor alone.

The full model (groups, containers, per-object ACLs) replaces these checks in a later part; the org's
groups and containers are already recorded (org_policy.py). Each check raises erchef's 403 or returns.
"""

from __future__ import annotations

from .authn import Requestor
from .errors import forbidden


def _deny(perm: str) -> None:
    raise forbidden(f"missing {perm} permission")


def require_superuser(requestor: Requestor, perm: str = "read") -> None:
    if not requestor.superuser:
        _deny(perm)


def require_self_or_superuser(requestor: Requestor, user_name: str, perm: str) -> None:
    if not (requestor.superuser or (requestor.type == "user" and requestor.name == user_name)):
        _deny(perm)


def require_org_admin(requestor: Requestor, perm: str) -> None:
    """Org admins (and the superuser) manage the org, its members and its clients."""
    if not (requestor.superuser or requestor.org_admin):
        _deny(perm)


def require_org_user(requestor: Requestor, perm: str = "read") -> None:
    """Any user of the org (not its clients)."""
    if not (requestor.superuser or requestor.org_admin or (requestor.type == "user" and requestor.member)):
        _deny(perm)


def may_create_client(requestor: Requestor) -> bool:
    """Admins and the org's validator create clients (users only read and delete them by default)."""
    return requestor.superuser or requestor.org_admin or requestor.validator


def may_read_client(requestor: Requestor, client_name: str) -> bool:
    if requestor.type == "client":
        return requestor.name == client_name or requestor.org_admin
    return requestor.superuser or requestor.org_admin or requestor.member


def may_change_client(requestor: Requestor, client_name: str, perm: str) -> bool:
    if requestor.type == "client":
        return requestor.name == client_name or requestor.org_admin
    if perm == "delete":
        return requestor.superuser or requestor.org_admin or requestor.member
    return requestor.superuser or requestor.org_admin


def deny(perm: str) -> None:
    _deny(perm)
