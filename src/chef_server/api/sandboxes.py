"""/organizations/O/sandboxes: which files a cookbook upload still needs, and committing them."""

from __future__ import annotations

import re
import time
import uuid

from .. import authz, presign
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import files
from .bookshelf import file_path, signing_key

PUT_URL_TTL = 900  # seconds an upload URL stays valid, as erchef's
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def checksums_of(data: dict) -> list[str]:
    """The checksums a sandbox POST asks about (a non-empty object of md5 hex -> null), or erchef's 400 (pure)."""
    if "checksums" not in data:
        raise bad_request("Field 'checksums' missing")
    sums = data["checksums"]
    if not isinstance(sums, dict) or not sums:
        raise bad_request("Bad checksums!")
    for checksum, value in sums.items():
        if not _MD5_HEX.match(checksum) or value is not None:
            raise bad_request("Bad checksums!")
    return list(sums)


async def create_sandbox(ctx: Ctx) -> tuple[int, object]:
    sums = checksums_of(ctx.json())
    await authz.require_container(ctx, "sandboxes", "create")
    sandbox_id = uuid.uuid4().hex
    async with ctx.transaction() as conn:
        await files.collect_abandoned(conn, ctx.org_id)
        listing = await files.create_sandbox(conn, sandbox_id, ctx.org_id, sums)
        key = await signing_key(conn)
    answer = {}
    for checksum, committed in listing:
        if committed:
            answer[checksum] = {"needs_upload": False}
        else:
            url = presign.presign(key, "PUT", ctx.base_url, file_path(ctx.org_id, checksum), PUT_URL_TTL)
            answer[checksum] = {"url": url, "needs_upload": True}
    return 201, {"sandbox_id": sandbox_id, "uri": ctx.org_url("sandboxes", sandbox_id), "checksums": answer}


async def commit_sandbox(ctx: Ctx) -> tuple[int, object]:
    sandbox_id = ctx.params["sandbox"]
    if ctx.json().get("is_completed") is not True:
        raise bad_request("JSON body must contain key '\"complete\"' with value 'true'.")
    await authz.require_container(ctx, "sandboxes", "create")
    async with ctx.transaction() as conn:
        listing = await files.get_sandbox(conn, ctx.org_id, sandbox_id)
        if listing is None:
            raise ChefError(404, error_body(f"No such sandbox '{sandbox_id}'."))
        to_commit = [s for s, committed in listing if not committed]
        missing = await files.missing_files(conn, ctx.org_id, to_commit)
        if missing:
            raise ChefError(503, error_body(f"Cannot update sandbox {sandbox_id}: the following checksums "
                                            f"have not been uploaded: {', '.join(missing)}"))
        await files.commit_sandbox(conn, ctx.org_id, sandbox_id, to_commit)
    return 200, {"guid": sandbox_id, "name": sandbox_id, "checksums": [s for s, _ in listing],
                 "create_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "is_completed": True}
