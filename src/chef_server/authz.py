"""Who may do what: the driver of authorization checks (decisions are in acl.py, ACE rows in storage/acls.py).

Org objects, containers and groups are checked against their ACLs, one query per check, never cached,
so a change (a user removed from a group or an org) holds at once on every frontend. Server-level
rules (the superuser, a user's own account) are decided from the requestor. Each check raises erchef's
403 or returns.
"""

from __future__ import annotations

import contextlib

from . import acl
from .authn import Requestor
from .storage import acls
from .storage import users as user_store


def deny(perm: str) -> None:
    raise acl.denied(perm)


def require_superuser(requestor: Requestor, perm: str = "read") -> None:
    if not requestor.superuser:
        deny(perm)


def require_self_or_superuser(requestor: Requestor, user_name: str, perm: str) -> None:
    if not (requestor.superuser or is_self(requestor, user_name)):
        deny(perm)


async def may_manage_users(ctx, conn, target: dict | None = None) -> bool:
    """Server-level user management (listing and creating users, and another user's account `target`): the
    superuser, and users in ::server-admins — though not on a superuser's account."""
    r = ctx.requestor
    if r.superuser:
        return True
    if r.type != "user" or (target is not None and target["superuser"]):
        return False
    return await user_store.is_server_admin(conn, r.id)


async def require_user_admin(ctx, perm: str, conn, target: dict | None = None) -> None:
    """erchef's 403 unless the requestor may manage users (may_manage_users), or `target` is its own account."""
    if target is not None and is_self(ctx.requestor, target["username"]):
        return
    if not await may_manage_users(ctx, conn, target):
        deny(perm)


def is_self(requestor: Requestor, user_name: str) -> bool:
    return requestor.type == "user" and requestor.name == user_name


def may_read_public_keys(requestor: Requestor) -> bool:
    """Org-scoped key reads: members of the org's public_key_read_access group (users and clients by default)."""
    return requestor.superuser or "public_key_read_access" in requestor.groups


def _subject(requestor: Requestor) -> acl.Subject:
    return acl.Subject(superuser=requestor.superuser, validator=requestor.validator)


async def may(ctx, perm: str, *, object_id: str | None = None, container: str | None = None, conn=None) -> bool:
    """Whether the requestor holds `perm` on an object (its authz id), one of the org's containers, or (with
    neither) the request's organization."""
    subject = _subject(ctx.requestor)
    if subject.superuser or subject.validator:  # decided without the ACLs
        return acl.decide(subject, perm, {}, (), container)
    async with contextlib.AsyncExitStack() as stack:
        if conn is None:
            conn = await stack.enter_async_context(ctx.db.connection())
        found = await acls.check(conn, ctx.requestor, object_id=object_id, org_id=ctx.org_id, container=container)
    return acl.decide(subject, perm, found["aces"], found["effective"] or (), container)


async def require(ctx, perm: str, *, object_id: str | None = None, container: str | None = None,
                  conn=None) -> None:
    """erchef's 403 "missing <perm> permission" unless the requestor holds `perm`."""
    if not await may(ctx, perm, object_id=object_id, container=container, conn=conn):
        deny(perm)


async def readable(ctx, object_ids: list[str], conn) -> set[str]:
    """The objects among `object_ids` (authz ids) the requestor may read, in one query (search filters with it)."""
    subject = _subject(ctx.requestor)
    if subject.superuser or subject.validator:
        return set(object_ids) if acl.decide(subject, "read", {}, ()) else set()
    return await acls.readable(conn, ctx.requestor, object_ids)


async def require_named(ctx, table: str, name: str, perm: str, conn) -> None:
    """`perm` on the org's object `name` of `table` (cookbooks, cookbook_artifacts, policies, policy_groups) when
    it exists; on its container when it does not (creating it then needs the container's `create`)."""
    subject = _subject(ctx.requestor)
    if subject.superuser or subject.validator:
        if not acl.decide(subject, perm, {}, (), table):
            deny(perm)
        return
    found = await acls.check(conn, ctx.requestor, org_id=ctx.org_id, table=table, name=name)
    if found["object"] is None:
        await require_container(ctx, table, "create" if perm == "update" else perm, conn=conn)
        return
    if not acl.decide(subject, perm, found["aces"], found["effective"] or (), table):
        deny(perm)


async def require_container(ctx, container: str, perm: str, conn=None) -> None:
    await require(ctx, perm, container=container, conn=conn)


async def require_org(ctx, perm: str, conn=None) -> None:
    """`perm` on the request's organization (its members: read; admins: everything)."""
    await require(ctx, perm, conn=conn)
