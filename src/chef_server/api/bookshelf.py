"""/bookshelf/organization-ORG/checksum-MD5: file uploads and downloads by signed URL (no Chef signature).

Requests are authorised by the URL's S3-style signature (presign.py) alone, as Chef's bookshelf is.
Bodies stream in both directions: a file never sits whole in memory.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .. import presign
from ..errors import ChefError
from ..host_header import without_default_port
from ..storage import files

log = logging.getLogger(__name__)
_PATH = re.compile(r"^/bookshelf/organization-([0-9a-zA-Z]+)/checksum-([0-9a-f]{32})$")
_secret: str | None = None


async def signing_key(conn) -> str:
    """The cluster's bookshelf signing key (never changes: read once per process)."""
    global _secret
    if _secret is None:
        _secret = await files.secret(conn)
    return _secret


async def _signing_key(db) -> str:
    """signing_key without taking a connection once it is known (every download asks)."""
    if _secret is not None:
        return _secret
    async with db.connection() as conn:
        return await signing_key(conn)


def file_path(org_id: str, checksum: str) -> str:
    return f"/bookshelf/organization-{org_id}/checksum-{checksum}"


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")


async def _authorised(request: Request, method: str) -> tuple[str, str] | Response:
    match = _PATH.match(request.url.path)
    if match is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    try:
        key = await _signing_key(request.app.state.db)
    except ChefError as exc:
        return _s3_error(exc.status, "ServiceUnavailable", "Please reduce your request rate.")
    host = without_default_port(request.headers.get("host", ""))  # as the URL was signed
    if not presign.verify(key, method, host, request.url.path, dict(request.query_params)):
        return _s3_error(403, "AccessDenied", "Access Denied")
    return match.group(1), match.group(2)


async def _put(request: Request) -> Response:
    found = await _authorised(request, "PUT")
    if isinstance(found, Response):
        return found
    org_id, checksum = found
    content_md5 = request.headers.get("content-md5")
    if content_md5 is not None:
        try:
            declared = base64.b64decode(content_md5, validate=True).hex()
        except (binascii.Error, ValueError):
            declared = ""
        if declared != checksum:
            return _s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    try:
        async with request.app.state.db.connection() as conn:
            await files.store(conn, org_id, checksum, request.stream())
    except files.DigestMismatch:
        return _s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    except ChefError as exc:
        return _s3_error(exc.status, "ServiceUnavailable", "Please reduce your request rate.")
    return Response(status_code=200, headers={"ETag": f'"{checksum}"'})


async def _get(request: Request) -> Response:
    found = await _authorised(request, "GET")
    if isinstance(found, Response):
        return found
    org_id, checksum = found
    db = request.app.state.db
    try:
        async with db.connection() as conn:
            found = await files.opening(conn, org_id, checksum)
    except ChefError as exc:
        return _s3_error(exc.status, "ServiceUnavailable", "Please reduce your request rate.")
    if found is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    size, first = found
    headers = {"ETag": f'"{checksum}"', "Content-Length": str(size)}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type="application/octet-stream")
    if len(first) >= size:
        return Response(first, headers=headers, media_type="application/octet-stream")

    async def body():
        yield first
        async with db.connection() as conn:
            async for chunk in files.chunks(conn, org_id, checksum, start=1):
                yield chunk

    return StreamingResponse(body(), headers=headers, media_type="application/octet-stream")


async def _dispatch(request: Request) -> Response:
    if request.method == "PUT":
        return await _put(request)
    return await _get(request)


def routes() -> list[Route]:
    """The bookshelf routes, placed before the API's catch-all routes."""
    return [Route("/bookshelf/{rest:path}", _dispatch, methods=["GET", "HEAD", "PUT"])]
