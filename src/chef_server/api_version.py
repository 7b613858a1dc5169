"""X-Ops-Server-API-Version: negotiation and the response header (erchef supports 0..2)."""

from __future__ import annotations

import orjson

from .errors import ChefError

MIN_VERSION = 0
MAX_VERSION = 2
HEADER = "x-ops-server-api-version"


def parse(raw: str | None) -> int:
    """The requested version; a missing header means 0. Raises a 406 ChefError outside 0..2."""
    if raw is None:
        return 0
    try:
        version = int(raw.strip())
    except ValueError:
        version = None
    if version is None or not MIN_VERSION <= version <= MAX_VERSION:
        raise ChefError(
            406,
            {"error": "invalid-x-ops-server-api-version", "message": f"Specified version {raw} not supported",
             "min_version": MIN_VERSION, "max_version": MAX_VERSION},
            headers={"X-Ops-Server-API-Version": response_header(raw, None)},
        )
    return version


def response_header(requested: int | str | None, served: int | None) -> str:
    """The header on every response; the request and response versions are -1 when unusable, as erchef does."""
    def as_text(value: int | str | None) -> str:
        if value is None:
            return "-1"
        try:
            return str(int(value))
        except ValueError:
            return "-1"
    return orjson.dumps({"min_version": str(MIN_VERSION), "max_version": str(MAX_VERSION),
                         "request_version": as_text(requested),
                         "response_version": as_text(served)}).decode()
