"""Cookbooks and their versions in PostgreSQL. A version and its file references are written in one
transaction: a version is complete or absent."""

from __future__ import annotations

import uuid

import orjson
import psycopg
from psycopg.types.json import Jsonb

_VERSION = "v.major DESC, v.minor DESC, v.patch DESC"


class MissingChecksum(Exception):
    """A manifest names a file that was never committed through a sandbox."""

    def __init__(self, checksum: str):
        super().__init__(checksum)
        self.checksum = checksum


async def versions(conn: psycopg.AsyncConnection, org_id: str, name: str | None = None) -> list[dict]:
    """(name, major, minor, patch) of every version, by name then newest first."""
    where, args = ("AND c.name = %s", (org_id, name)) if name is not None else ("", (org_id,))
    cur = await conn.execute(
        "SELECT c.name, v.major, v.minor, v.patch FROM cookbooks c JOIN cookbook_versions v ON v.cookbook_id = c.id "
        f"WHERE c.org_id = %s {where} ORDER BY c.name, {_VERSION}", args)
    return await cur.fetchall()


async def get_version(conn: psycopg.AsyncConnection, org_id: str, name: str,
                      version: tuple[int, int, int] | None, lock: bool = False) -> dict | None:
    """One version (None: the latest), with its cookbook's id."""
    if version is None:
        where, args = "", (org_id, name)
    else:
        where, args = "AND v.major = %s AND v.minor = %s AND v.patch = %s", (org_id, name, *version)
    cur = await conn.execute(
        "SELECT v.id, v.cookbook_id, v.major, v.minor, v.patch, v.frozen, v.doc FROM cookbooks c "
        f"JOIN cookbook_versions v ON v.cookbook_id = c.id WHERE c.org_id = %s AND c.name = %s {where} "
        f"ORDER BY {_VERSION} LIMIT 1" + (" FOR UPDATE OF v" if lock else ""), args)
    row = await cur.fetchone()
    if row is not None:
        row["doc"] = orjson.loads(row["doc"])
    return row


async def put_version(conn: psycopg.AsyncConnection, org_id: str, name: str, version: tuple[int, int, int],
                      doc: dict, frozen: bool, recipes: list[str], sums: list[str], actor: str,
                      existing: dict | None) -> list[str]:
    """Create or replace a version and its file references (call inside a transaction). Returns the checksums
    the version no longer references; raises MissingChecksum."""
    dependencies = doc["metadata"].get("dependencies") or {}
    text = orjson.dumps(doc).decode()
    if existing is None:
        await conn.execute("INSERT INTO cookbooks (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                           "ON CONFLICT (org_id, name) DO NOTHING", (uuid.uuid4().hex, org_id, uuid.uuid4().hex, name))
        cur = await conn.execute("SELECT id FROM cookbooks WHERE org_id = %s AND name = %s", (org_id, name))
        cookbook_id = (await cur.fetchone())["id"]
        version_id = uuid.uuid4().hex
        await conn.execute(
            "INSERT INTO cookbook_versions (id, cookbook_id, major, minor, patch, frozen, dependencies, recipes, doc, "
            "last_updated_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (version_id, cookbook_id, *version, frozen, Jsonb(dependencies), Jsonb(recipes), text, actor))
        old: set[str] = set()
    else:
        version_id = existing["id"]
        await conn.execute(
            "UPDATE cookbook_versions SET frozen = %s, dependencies = %s, recipes = %s, doc = %s, "
            "last_updated_by = %s, updated_at = now() WHERE id = %s",
            (frozen, Jsonb(dependencies), Jsonb(recipes), text, actor, version_id))
        cur = await conn.execute("DELETE FROM cookbook_version_checksums WHERE cookbook_version_id = %s "
                                 "RETURNING checksum", (version_id,))
        old = {row["checksum"] for row in await cur.fetchall()}
    await _reference(conn, "cookbook_version_checksums", "cookbook_version_id", version_id, org_id, sums)
    return sorted(old - set(sums))


async def _reference(conn: psycopg.AsyncConnection, table: str, column: str, owner_id: str, org_id: str,
                     sums: list[str]) -> None:
    """Reference committed files; MissingChecksum names the first one that is not."""
    if not sums:
        return
    cur = await conn.execute("SELECT checksum FROM checksums WHERE org_id = %s AND checksum = ANY(%s) FOR KEY SHARE",
                             (org_id, sums))
    present = {row["checksum"] for row in await cur.fetchall()}
    for checksum in sums:
        if checksum not in present:
            raise MissingChecksum(checksum)
    await conn.execute(f"INSERT INTO {table} ({column}, org_id, checksum) SELECT %s, %s, unnest(%s::text[])",
                       (owner_id, org_id, sums))


async def delete_version(conn: psycopg.AsyncConnection, row: dict) -> list[str]:
    """Delete a version (and its cookbook when it was the last); returns the checksums it referenced."""
    cur = await conn.execute("DELETE FROM cookbook_version_checksums WHERE cookbook_version_id = %s "
                             "RETURNING checksum", (row["id"],))
    sums = sorted(r["checksum"] for r in await cur.fetchall())
    await conn.execute("DELETE FROM cookbook_versions WHERE id = %s", (row["id"],))
    await conn.execute("DELETE FROM cookbooks c WHERE id = %s AND NOT EXISTS "
                       "(SELECT 1 FROM cookbook_versions v WHERE v.cookbook_id = c.id)", (row["cookbook_id"],))
    return sums


async def latest(conn: psycopg.AsyncConnection, org_id: str) -> list[dict]:
    """Each cookbook's newest version: name, major, minor, patch, recipes."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (c.name) c.name, v.major, v.minor, v.patch, v.recipes FROM cookbooks c "
        f"JOIN cookbook_versions v ON v.cookbook_id = c.id WHERE c.org_id = %s ORDER BY c.name, {_VERSION}",
        (org_id,))
    return await cur.fetchall()


async def universe(conn: psycopg.AsyncConnection, org_id: str) -> list[dict]:
    """Every version's dependencies: name, major, minor, patch, dependencies."""
    cur = await conn.execute(
        "SELECT c.name, v.major, v.minor, v.patch, v.dependencies FROM cookbooks c "
        f"JOIN cookbook_versions v ON v.cookbook_id = c.id WHERE c.org_id = %s ORDER BY c.name, {_VERSION}",
        (org_id,))
    return await cur.fetchall()


async def docs(conn: psycopg.AsyncConnection, org_id: str, wanted: dict[str, tuple[int, int, int]]) -> dict:
    """{name: (frozen, doc)} of the given versions (the depsolver's answer), in one query."""
    if not wanted:
        return {}
    names = list(wanted)
    cur = await conn.execute(
        "SELECT c.name, v.frozen, v.doc FROM cookbooks c JOIN cookbook_versions v ON v.cookbook_id = c.id "
        "JOIN unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) AS w(name, major, minor, patch) "
        "ON w.name = c.name AND w.major = v.major AND w.minor = v.minor AND w.patch = v.patch "
        "WHERE c.org_id = %s",
        (names, [wanted[n][0] for n in names], [wanted[n][1] for n in names], [wanted[n][2] for n in names], org_id))
    return {row["name"]: (row["frozen"], orjson.loads(row["doc"])) for row in await cur.fetchall()}


async def artifact_listing(conn: psycopg.AsyncConnection, org_id: str, name: str | None = None) -> list[dict]:
    """(name, identifier) of every cookbook artifact version, by name then identifier."""
    where, args = ("AND a.name = %s", (org_id, name)) if name is not None else ("", (org_id,))
    cur = await conn.execute(
        "SELECT a.name, v.identifier FROM cookbook_artifacts a JOIN cookbook_artifact_versions v "
        f"ON v.cookbook_artifact_id = a.id WHERE a.org_id = %s {where} ORDER BY a.name, v.identifier", args)
    return await cur.fetchall()


async def get_artifact(conn: psycopg.AsyncConnection, org_id: str, name: str, identifier: str,
                       lock: bool = False) -> dict | None:
    cur = await conn.execute(
        "SELECT v.id, v.cookbook_artifact_id, v.doc FROM cookbook_artifacts a JOIN cookbook_artifact_versions v "
        "ON v.cookbook_artifact_id = a.id WHERE a.org_id = %s AND a.name = %s AND v.identifier = %s"
        + (" FOR UPDATE OF v" if lock else ""), (org_id, name, identifier))
    row = await cur.fetchone()
    if row is not None:
        row["doc"] = orjson.loads(row["doc"])
    return row


async def put_artifact(conn: psycopg.AsyncConnection, org_id: str, name: str, identifier: str, doc: dict,
                       sums: list[str]) -> bool:
    """Create an artifact version with its file references (inside a transaction); False when it exists."""
    await conn.execute("INSERT INTO cookbook_artifacts (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                       "ON CONFLICT (org_id, name) DO NOTHING", (uuid.uuid4().hex, org_id, uuid.uuid4().hex, name))
    cur = await conn.execute("SELECT id FROM cookbook_artifacts WHERE org_id = %s AND name = %s", (org_id, name))
    artifact_id = (await cur.fetchone())["id"]
    version_id = uuid.uuid4().hex
    cur = await conn.execute(
        "INSERT INTO cookbook_artifact_versions (id, cookbook_artifact_id, identifier, doc) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING", (version_id, artifact_id, identifier, orjson.dumps(doc).decode()))
    if cur.rowcount != 1:
        return False
    await _reference(conn, "cookbook_artifact_version_checksums", "cookbook_artifact_version_id", version_id, org_id,
                     sums)
    return True


async def delete_artifact(conn: psycopg.AsyncConnection, row: dict) -> list[str]:
    """Delete an artifact version (and its artifact when it was the last); returns the checksums it referenced."""
    cur = await conn.execute("DELETE FROM cookbook_artifact_version_checksums WHERE cookbook_artifact_version_id = %s "
                             "RETURNING checksum", (row["id"],))
    sums = sorted(r["checksum"] for r in await cur.fetchall())
    await conn.execute("DELETE FROM cookbook_artifact_versions WHERE id = %s", (row["id"],))
    await conn.execute("DELETE FROM cookbook_artifacts a WHERE id = %s AND NOT EXISTS "
                       "(SELECT 1 FROM cookbook_artifact_versions v WHERE v.cookbook_artifact_id = a.id)",
                       (row["cookbook_artifact_id"],))
    return sums
