"""What a new organization starts with: its groups, containers and their ACLs (erchef's default org policy).

Data only: organizations.py records it (as ACE rows) when an org is created; authz.py enforces the ACLs.
"""

from __future__ import annotations

CONTAINERS = ("clients", "containers", "cookbooks", "data", "environments", "groups", "nodes", "roles",
              "sandboxes", "policies", "policy_groups", "cookbook_artifacts")
GROUPS = ("admins", "billing-admins", "clients", "users", "public_key_read_access")
PERMS = ("create", "read", "update", "delete", "grant")
CREATOR = "$creator"  # replaced by the creator's authz id

# (objects, permissions, grantees): objects are ("container"|"group"|"organization", name);
# grantees ("user", CREATOR) or ("group", name).
_CRUD = ("create", "read", "update", "delete")
_USER_CONTAINERS = ("cookbooks", "data", "nodes", "roles", "environments", "policies", "policy_groups",
                    "cookbook_artifacts")
DEFAULT_ACES: tuple = (
    ([("group", "billing-admins")], ("read", "update"), [("user", CREATOR), ("group", "billing-admins")]),
    ([("container", c) for c in CONTAINERS] + [("group", g) for g in GROUPS] + [("organization", "")],
     PERMS, [("user", CREATOR)]),
    ([("container", c) for c in CONTAINERS] + [("group", g) for g in ("admins", "clients", "users")]
     + [("organization", "")], PERMS, [("group", "admins")]),
    ([("group", "public_key_read_access")], ("read", "update"), [("group", "admins")]),
    ([("container", c) for c in _USER_CONTAINERS], _CRUD, [("group", "users")]),
    ([("container", "clients")], ("read", "delete"), [("group", "users")]),
    ([("container", "groups"), ("container", "containers"), ("organization", "")], ("read",), [("group", "users")]),
    ([("container", "sandboxes")], ("create",), [("group", "users")]),
    ([("container", "nodes")], ("read", "create"), [("group", "clients")]),
    ([("container", c) for c in ("policies", "policy_groups", "cookbook_artifacts", "data", "cookbooks",
                                 "environments", "roles")], ("read",), [("group", "clients")]),
)


def empty_acl() -> dict:
    return {perm: {"actors": [], "groups": []} for perm in PERMS}


def default_acls(creator: str) -> dict[tuple[str, str], dict]:
    """The ACL of every default object of a new org, keyed by (kind, name); actors are authz ids."""
    acls: dict[tuple[str, str], dict] = {}
    for objects, perms, grantees in DEFAULT_ACES:
        for obj in objects:
            acl = acls.setdefault(obj, empty_acl())
            for perm in perms:
                for kind, name in grantees:
                    bucket = acl[perm]["actors" if kind == "user" else "groups"]
                    member = creator if name == CREATOR else name
                    if member not in bucket:
                        bucket.append(member)
    return acls


# Initial memberships: the creator is an admin and a user; admins and users read public keys.
DEFAULT_MEMBERS = {"admins": [("user", CREATOR)], "users": [("user", CREATOR)],
                   "public_key_read_access": [("group", "users"), ("group", "clients")]}
