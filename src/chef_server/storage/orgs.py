"""Organizations, their members, invitations, groups and containers in PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg


def _id() -> str:
    return uuid.uuid4().hex


async def get(conn: psycopg.AsyncConnection, name: str) -> dict | None:
    cur = await conn.execute("SELECT id, authz_id, name, full_name FROM orgs WHERE name = %s", (name,))
    return await cur.fetchone()


async def names(conn: psycopg.AsyncConnection) -> list[str]:
    cur = await conn.execute("SELECT name FROM orgs ORDER BY name")
    return [row["name"] for row in await cur.fetchall()]


async def insert(conn: psycopg.AsyncConnection, org: dict, acls: dict, members: dict,
                 creator_id: str | None) -> bool:
    """Create an org with its default groups (and their members), containers and their ACLs; False when the name
    is taken. `acls` is org_policy.default_acls(creator's authz id): actors are authz ids, groups names."""
    cur = await conn.execute(
        "INSERT INTO orgs (id, authz_id, name, full_name) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (org["id"], org["authz_id"], org["name"], org["full_name"]))
    if cur.rowcount != 1:
        return False
    group_ids, authz_ids = {}, {("organization", ""): org["authz_id"]}
    for kind, name in sorted(acls):
        if kind == "organization":
            continue
        authz_ids[(kind, name)] = _id()
        if kind == "group":
            group_ids[name] = _id()
            await conn.execute("INSERT INTO groups (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s)",
                               (group_ids[name], org["id"], authz_ids[(kind, name)], name))
        elif kind == "container":
            await conn.execute("INSERT INTO containers (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s)",
                               (_id(), org["id"], authz_ids[(kind, name)], name))
    # the default groups get the org policy's ACLs, not the groups container's (the insert trigger copied those)
    await conn.execute("DELETE FROM aces WHERE authz_id = ANY(%s)", (list(authz_ids.values()),))
    group_authz = {name: authz_ids[("group", name)] for name in group_ids}
    rows = [(authz_ids[obj], perm, member)
            for obj, acl in acls.items() for perm, part in acl.items()
            for member in part["actors"] + [group_authz[g] for g in part["groups"]]]
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO aces (authz_id, perm, member) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                              rows)
    # _default was made with the org (a trigger), before its container had an ACL to copy
    await conn.execute("SELECT chef_inherit_acl(authz_id, org_id, 'environments', NULL) FROM environments "
                       "WHERE org_id = %s", (org["id"],))
    for group, entries in members.items():
        for kind, member in entries:
            member_id = group_ids.get(member) if kind == "group" else creator_id
            if member_id is not None:
                await conn.execute("INSERT INTO group_members (group_id, member_type, member_id) VALUES (%s, %s, %s)",
                                   (group_ids[group], kind, member_id))
    # the server-wide ORG_read_access_group holds the org's users: its members' own ACLs grant it read
    await conn.execute("INSERT INTO groups (id, org_id, authz_id, name) VALUES (md5(%s || '::read_access'), NULL, %s, "
                       "%s || '_read_access_group')", (org["id"], _id(), org["name"]))
    await conn.execute("INSERT INTO group_members (group_id, member_type, member_id) "
                       "VALUES (md5(%s || '::read_access'), 'group', %s)", (org["id"], group_ids["users"]))
    return True


async def update(conn: psycopg.AsyncConnection, org_id: str, full_name: str) -> None:
    await conn.execute("UPDATE orgs SET full_name = %s WHERE id = %s", (full_name, org_id))


async def delete(conn: psycopg.AsyncConnection, org_id: str) -> None:
    """Remove an org and everything in it (clients' keys too)."""
    await conn.execute("DELETE FROM keys WHERE owner_id IN (SELECT id FROM clients WHERE org_id = %s)", (org_id,))
    await conn.execute("DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE org_id = %s)",
                       (org_id,))
    await conn.execute("DELETE FROM groups WHERE id = md5(%s || '::read_access')", (org_id,))
    await conn.execute("DELETE FROM orgs WHERE id = %s", (org_id,))


async def member_names(conn: psycopg.AsyncConnection, org_id: str) -> list[str]:
    cur = await conn.execute("SELECT u.username FROM org_user_associations a JOIN users u ON u.id = a.user_id "
                             "WHERE a.org_id = %s ORDER BY u.username", (org_id,))
    return [row["username"] for row in await cur.fetchall()]


async def is_member(conn: psycopg.AsyncConnection, org_id: str, user_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM org_user_associations WHERE org_id = %s AND user_id = %s",
                             (org_id, user_id))
    return await cur.fetchone() is not None


async def add_member(conn: psycopg.AsyncConnection, org_id: str, user_id: str, admin: bool = False) -> bool:
    """Associate a user with an org and put them in its users (and admins) group; False if already there."""
    cur = await conn.execute("INSERT INTO org_user_associations (org_id, user_id) VALUES (%s, %s) "
                             "ON CONFLICT DO NOTHING", (org_id, user_id))
    if cur.rowcount != 1:
        return False
    groups = ["users", "admins"] if admin else ["users"]
    await conn.execute(
        "INSERT INTO group_members (group_id, member_type, member_id) SELECT id, 'user', %s FROM groups "
        "WHERE org_id = %s AND name = ANY(%s) ON CONFLICT DO NOTHING", (user_id, org_id, groups))
    await conn.execute("DELETE FROM org_user_invites WHERE org_id = %s AND user_id = %s", (org_id, user_id))
    await conn.execute("INSERT INTO aces (authz_id, perm, member) SELECT u.authz_id, 'read', g.authz_id "
                       "FROM users u, groups g WHERE u.id = %s AND g.id = md5(%s || '::read_access') "
                       "ON CONFLICT DO NOTHING", (user_id, org_id))
    return True


async def in_group(conn: psycopg.AsyncConnection, org_id: str, group: str, user_id: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id WHERE g.org_id = %s AND g.name = %s "
        "AND m.member_type = 'user' AND m.member_id = %s", (org_id, group, user_id))
    return await cur.fetchone() is not None


async def remove_member(conn: psycopg.AsyncConnection, org_id: str, user_id: str) -> None:
    await conn.execute("DELETE FROM org_user_associations WHERE org_id = %s AND user_id = %s", (org_id, user_id))
    await conn.execute("DELETE FROM group_members WHERE member_type = 'user' AND member_id = %s "
                       "AND group_id IN (SELECT id FROM groups WHERE org_id = %s)", (user_id, org_id))
    await conn.execute("DELETE FROM aces WHERE authz_id = (SELECT authz_id FROM users WHERE id = %s) "
                       "AND member = (SELECT authz_id FROM groups WHERE id = md5(%s || '::read_access'))",
                       (user_id, org_id))


async def insert_invite(conn: psycopg.AsyncConnection, org_id: str, user_id: str, by: str) -> str | None:
    invite_id = _id()
    cur = await conn.execute("INSERT INTO org_user_invites (id, org_id, user_id, last_updated_by) "
                             "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", (invite_id, org_id, user_id, by))
    return invite_id if cur.rowcount == 1 else None


async def invites_of_org(conn: psycopg.AsyncConnection, org_id: str) -> list[dict]:
    cur = await conn.execute("SELECT i.id, u.username FROM org_user_invites i JOIN users u ON u.id = i.user_id "
                             "WHERE i.org_id = %s ORDER BY u.username", (org_id,))
    return await cur.fetchall()


async def invites_of_user(conn: psycopg.AsyncConnection, user_id: str) -> list[dict]:
    cur = await conn.execute("SELECT i.id, o.name AS orgname FROM org_user_invites i JOIN orgs o ON o.id = i.org_id "
                             "WHERE i.user_id = %s ORDER BY o.name", (user_id,))
    return await cur.fetchall()


async def get_invite(conn: psycopg.AsyncConnection, invite_id: str) -> dict | None:
    cur = await conn.execute(
        "SELECT i.id, i.org_id, i.user_id, i.last_updated_by, o.name AS orgname, u.username FROM org_user_invites i "
        "JOIN orgs o ON o.id = i.org_id JOIN users u ON u.id = i.user_id WHERE i.id = %s", (invite_id,))
    return await cur.fetchone()


async def delete_invite(conn: psycopg.AsyncConnection, invite_id: str) -> None:
    await conn.execute("DELETE FROM org_user_invites WHERE id = %s", (invite_id,))
