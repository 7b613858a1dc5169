"""`chef-server-ctl grant-server-admin-permissions | remove-server-admin-permissions | list-server-admins`.

Like Chef's, these go straight to the database (there is no API for the server-wide ::server-admins group):
its members may list, read, create, update and delete users other than the superusers, in any organization.
"""

from __future__ import annotations

import argparse

import psycopg

from .. import config
from ..storage.schema_authz import SERVER_ADMINS


class ServerAdminError(Exception):
    """An operator's mistake, reported in one line."""


def _user_id(conn: psycopg.Connection, name: str) -> tuple[str, bool]:
    row = conn.execute("SELECT id, superuser FROM users WHERE username = %s", (name,)).fetchone()
    if row is None:
        raise ServerAdminError(f"User {name} was not found.")
    return row[0], row[1]


def grant(conninfo: str, name: str) -> None:
    """Put user `name` into ::server-admins (again is fine)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        user_id, _ = _user_id(conn, name)
        conn.execute("INSERT INTO group_members (group_id, member_type, member_id) "
                     f"VALUES ({SERVER_ADMINS}, 'user', %s) ON CONFLICT DO NOTHING", (user_id,))


def remove(conninfo: str, name: str) -> None:
    """Take user `name` out of ::server-admins; a superuser stays (it is a server admin by definition)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        user_id, superuser = _user_id(conn, name)
        if superuser:
            raise ServerAdminError(f"{name} is a superuser and cannot be removed from server-admins.")
        removed = conn.execute(f"DELETE FROM group_members WHERE group_id = {SERVER_ADMINS} AND member_type = 'user' "
                               "AND member_id = %s", (user_id,)).rowcount
        if not removed:
            raise ServerAdminError(f"User {name} is not a member of server-admins.")


def members(conninfo: str) -> list[str]:
    """The names of ::server-admins' users, sorted."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT u.username FROM group_members m JOIN users u ON u.id = m.member_id "
                            f"WHERE m.group_id = {SERVER_ADMINS} AND m.member_type = 'user' "
                            "ORDER BY u.username").fetchall()
    return [name for (name,) in rows]


def run_grant(args: argparse.Namespace, settings: config.Settings) -> int:
    grant(settings.db_conninfo, args.user_name)
    print(f"User {args.user_name} was added to server-admins: it may now list, read, create, update and delete "
          "users (other than superusers), in any organization.")
    return 0


def run_remove(args: argparse.Namespace, settings: config.Settings) -> int:
    remove(settings.db_conninfo, args.user_name)
    print(f"User {args.user_name} was removed from server-admins: it manages users only where its organizations "
          "let it.")
    return 0


def run_list(args: argparse.Namespace, settings: config.Settings) -> int:
    for name in members(settings.db_conninfo):
        print(name)
    return 0
