"""bookshelf in SQL: file bytes in chunks, the committed checksums, sandboxes, and collecting the unused.

A file is stored once per (org, checksum). Its `files` row is written in the same transaction as its
chunks, after the MD5 is checked, so a frontend dying mid-upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import psycopg

CHUNK = 256 * 1024
ABANDONED = "1 day"  # uploads never committed, and sandboxes never completed, are collected after this


class DigestMismatch(Exception):
    """The bytes received do not have the MD5 they were uploaded under."""


async def secret(conn: psycopg.AsyncConnection) -> str:
    cur = await conn.execute("SELECT value FROM server_secrets WHERE name = 'bookshelf_signing_key'")
    return (await cur.fetchone())["value"]


async def store(conn: psycopg.AsyncConnection, org_id: str, checksum: str, body: AsyncIterator[bytes]) -> int:
    """Stream `body` into chunks of (org_id, checksum) in one transaction; raises DigestMismatch (nothing
    stored) when its MD5 is not `checksum`. A file already stored is read and checked, not written twice."""
    md5, size, seq, buffer = hashlib.md5(), 0, 0, bytearray()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{org_id}/{checksum}",))
        cur = await conn.execute("SELECT 1 FROM files WHERE org_id = %s AND checksum = %s", (org_id, checksum))
        exists = await cur.fetchone() is not None
        async for piece in body:
            md5.update(piece)
            size += len(piece)
            if exists:
                continue
            buffer += piece
            while len(buffer) >= CHUNK:
                await _chunk(conn, org_id, checksum, seq, bytes(buffer[:CHUNK]))
                del buffer[:CHUNK]
                seq += 1
        if md5.hexdigest() != checksum:
            raise DigestMismatch  # the transaction rolls back: no chunk stays
        if not exists:
            if buffer or seq == 0:
                await _chunk(conn, org_id, checksum, seq, bytes(buffer))
            await conn.execute("INSERT INTO files (org_id, checksum, size) VALUES (%s, %s, %s)",
                               (org_id, checksum, size))
    return size


async def _chunk(conn: psycopg.AsyncConnection, org_id: str, checksum: str, seq: int, data: bytes) -> None:
    await conn.execute("INSERT INTO file_chunks (org_id, checksum, seq, data) VALUES (%s, %s, %s, %s)",
                       (org_id, checksum, seq, data))


async def opening(conn: psycopg.AsyncConnection, org_id: str, checksum: str) -> tuple[int, bytes] | None:
    """The file's size and first chunk in one query (most cookbook files are one chunk), or None."""
    cur = await conn.execute(
        "SELECT f.size, c.data FROM files f LEFT JOIN file_chunks c "
        "ON c.org_id = f.org_id AND c.checksum = f.checksum AND c.seq = 0 "
        "WHERE f.org_id = %s AND f.checksum = %s", (org_id, checksum))
    row = await cur.fetchone()
    return None if row is None else (row["size"], bytes(row["data"] or b""))


async def chunks(conn: psycopg.AsyncConnection, org_id: str, checksum: str, start: int = 0) -> AsyncIterator[bytes]:
    """The file's bytes from chunk `start` on, one chunk at a time (one query per chunk: memory stays bounded)."""
    seq = start
    while True:
        cur = await conn.execute("SELECT data FROM file_chunks WHERE org_id = %s AND checksum = %s AND seq = %s",
                                 (org_id, checksum, seq))
        row = await cur.fetchone()
        if row is None:
            return
        yield bytes(row["data"])
        seq += 1


async def create_sandbox(conn: psycopg.AsyncConnection, sandbox_id: str, org_id: str,
                         sums: list[str]) -> list[tuple[str, bool]]:
    """Record a sandbox; returns each checksum with whether it is already committed (needs no upload)."""
    cur = await conn.execute("SELECT checksum FROM checksums WHERE org_id = %s AND checksum = ANY(%s)",
                             (org_id, sums))
    committed = {row["checksum"] for row in await cur.fetchall()}
    listing = [(s, s in committed) for s in sums]
    await conn.execute("INSERT INTO sandboxes (id, org_id, checksums) VALUES (%s, %s, %s::jsonb)",
                       (sandbox_id, org_id, psycopg.types.json.Jsonb(listing)))
    return listing


async def get_sandbox(conn: psycopg.AsyncConnection, org_id: str, sandbox_id: str) -> list[tuple[str, bool]] | None:
    cur = await conn.execute("SELECT checksums FROM sandboxes WHERE org_id = %s AND id = %s FOR UPDATE",
                             (org_id, sandbox_id))
    row = await cur.fetchone()
    return None if row is None else [(s, bool(c)) for s, c in row["checksums"]]


async def missing_files(conn: psycopg.AsyncConnection, org_id: str, sums: list[str]) -> list[str]:
    cur = await conn.execute("SELECT checksum FROM files WHERE org_id = %s AND checksum = ANY(%s)", (org_id, sums))
    present = {row["checksum"] for row in await cur.fetchall()}
    return sorted(s for s in sums if s not in present)


async def commit_sandbox(conn: psycopg.AsyncConnection, org_id: str, sandbox_id: str, sums: list[str]) -> None:
    """Mark the sandbox's files committed (manifests may now name them) and forget the sandbox."""
    await conn.execute("INSERT INTO checksums (org_id, checksum) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
                       (org_id, sums))
    await conn.execute("DELETE FROM sandboxes WHERE id = %s", (sandbox_id,))


async def collect(conn: psycopg.AsyncConnection, org_id: str, sums: list[str]) -> None:
    """Delete the committed files among `sums` that no cookbook or cookbook artifact references any more
    (inside the transaction that dropped the references, so a crash cannot leave them unreferenced)."""
    if not sums:
        return
    try:
        async with conn.transaction():
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            await conn.execute(
                "DELETE FROM checksums c WHERE c.org_id = %s AND c.checksum = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM cookbook_version_checksums r "
                "                WHERE r.org_id = c.org_id AND r.checksum = c.checksum) "
                "AND NOT EXISTS (SELECT 1 FROM cookbook_artifact_version_checksums r "
                "                WHERE r.org_id = c.org_id AND r.checksum = c.checksum)", (org_id, sums))
            await conn.execute(
                "DELETE FROM files f WHERE f.org_id = %s AND f.checksum = ANY(%s) AND NOT EXISTS "
                "(SELECT 1 FROM checksums c WHERE c.org_id = f.org_id AND c.checksum = f.checksum)", (org_id, sums))
    except psycopg.errors.ForeignKeyViolation:
        pass  # a concurrent upload started referencing one of them: keep them all, a later delete collects


async def collect_abandoned(conn: psycopg.AsyncConnection, org_id: str) -> None:
    """Drop the org's sandboxes never completed and uploads never committed, once ABANDONED has passed."""
    await conn.execute(f"DELETE FROM sandboxes WHERE org_id = %s AND created_at < now() - interval '{ABANDONED}'",
                       (org_id,))
    await conn.execute(
        f"DELETE FROM files f WHERE f.org_id = %s AND f.created_at < now() - interval '{ABANDONED}' "
        "AND NOT EXISTS (SELECT 1 FROM checksums c WHERE c.org_id = f.org_id AND c.checksum = f.checksum) "
        "AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.org_id = f.org_id "
        "                AND s.checksums @> jsonb_build_array(jsonb_build_array(f.checksum, false)))", (org_id,))
