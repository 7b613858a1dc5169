"""Who may do what. For now erchef's default rules for the objects of part 1, decided from the requestor.

The requestor carries the org's groups it is in (nested groups included), so these rules follow the
default ACLs an org is created with (org_policy.py). Per-object ACLs replace them in a later part.
Each check raises erchef's 403 or returns.
"""

from __future__ import annotations

from .authn import Requestor
from .errors import forbidden


def deny(perm: str) -> None:
    raise forbidden(f"missing {perm} permission")


def require_superuser(requestor: Requestor, perm: str = "read") -> None:
    if not requestor.superuser:
        deny(perm)


def require_self_or_superuser(requestor: Requestor, user_name: str, perm: str) -> None:
    if not (requestor.superuser or is_self(requestor, user_name)):
        deny(perm)


def is_self(requestor: Requestor, user_name: str) -> bool:
    return requestor.type == "user" and requestor.name == user_name


def require_org_admin(requestor: Requestor, perm: str) -> None:
    """Org admins (and the superuser) manage the org, its members and its clients."""
    if not (requestor.superuser or requestor.org_admin):
        deny(perm)


def require_org_user(requestor: Requestor, perm: str = "read") -> None:
    """Users of the org (the users group reads the org, its groups and containers)."""
    if not (requestor.superuser or requestor.org_admin or "users" in requestor.groups):
        deny(perm)


def may_read_public_keys(requestor: Requestor) -> bool:
    """Org-scoped key reads: members of public_key_read_access (users and clients by default)."""
    return requestor.superuser or "public_key_read_access" in requestor.groups


def may_create_client(requestor: Requestor) -> bool:
    """Admins and the org's validator create clients."""
    return requestor.superuser or requestor.org_admin or requestor.validator


def may_access_client(requestor: Requestor, client_name: str, perm: str) -> bool:
    """A client's own ACL grants it everything but grant; admins all; users read and delete (clients container).
    Validators have no rights on any client, themselves included."""
    if requestor.superuser or requestor.org_admin:
        return True
    if requestor.type == "client":
        return requestor.name == client_name and not requestor.validator
    return perm in ("read", "delete") and "users" in requestor.groups


def may_change_client_keys(requestor: Requestor, client_name: str) -> bool:
    """Admins, and the client itself (its own ACL grants it update)."""
    return may_access_client(requestor, client_name, "update")


# What the clients group may do in each container (erchef's default org ACLs, org_policy.DEFAULT_ACES).
_CLIENT_PERMS = {"nodes": ("read", "create"), "roles": ("read",), "environments": ("read",), "data": ("read",)}


def may_on_object(requestor: Requestor, container: str, perm: str, created_by: str | None = None) -> bool:
    """Nodes, roles, environments and data bags: an object inherits its container's ACL and grants its
    creator everything (so a client updates the node it created). Validators only create clients."""
    if requestor.superuser or requestor.org_admin:
        return True
    if requestor.validator:
        return False
    if created_by is not None and created_by == requestor.id:
        return True
    if "users" in requestor.groups and perm in ("create", "read", "update", "delete"):
        return True
    return "clients" in requestor.groups and perm in _CLIENT_PERMS.get(container, ())


def require_on_object(requestor: Requestor, container: str, perm: str, created_by: str | None = None) -> None:
    if not may_on_object(requestor, container, perm, created_by):
        deny(perm)
