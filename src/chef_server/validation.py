"""Request bodies and names: parsing and erchef's validation rules and messages (pure)."""

from __future__ import annotations

import re

import orjson

from .errors import ChefError, bad_request

MAX_BODY = 2_000_000  # the largest request body Chef's frontends accept
TOO_BIG = f"JSON must be no more than {MAX_BODY} bytes."
MIN_CLIENT_MAJOR = 10  # Chef's frontends refuse clients older than Chef 10 (X-Chef-Version)
_CHEF_VERSION = re.compile(r"^(\d+)\.(\d+)\.")

USER_NAME = re.compile(r"^[a-z0-9\-_]+$")
CLIENT_NAME = re.compile(r"^[.\w-]+$", re.ASCII)
KEY_NAME = re.compile(r"^[.\w:-]+$", re.ASCII)
ORG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,254}$")
ORG_FULL_NAME = re.compile(r"^\S.{0,1022}$", re.DOTALL)
# erchef's email check, case-insensitive (RFC 5322 dot-atom or quoted local part; a domain or an address literal).
EMAIL = re.compile(
    r"^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r'|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21\x23-\x5b\x5d-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")'
    r"@(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"|\[(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?"
    r"|[a-z0-9-]*[a-z0-9]:(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21-\x5a\x53-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])+)\])$",
    re.IGNORECASE)


def parse_json_object(body: bytes) -> dict:
    """The request body as a JSON object, or erchef's 400 (invalid JSON / wrong type) or 413."""
    if len(body) > MAX_BODY:
        raise ChefError(413, {"error": TOO_BIG})
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("invalid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("Incorrect JSON type for request body")
    return data


def field_missing(field: str) -> ChefError:
    return bad_request(f"Field '{field}' missing")


def field_invalid(field: str) -> ChefError:
    return bad_request(f"Field '{field}' invalid")


def require_string(data: dict, field: str, pattern: re.Pattern | None = None, optional: bool = False) -> str | None:
    """`data[field]` as a string matching `pattern`: erchef's "missing"/"invalid" 400s otherwise."""
    if field not in data:
        if optional:
            return None
        raise field_missing(field)
    value = data[field]
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise field_invalid(field)
    return value


def optional_bool(data: dict, field: str) -> bool | None:
    value = data.get(field)
    if value is not None and not isinstance(value, bool):
        raise field_invalid(field)
    return value


def check_client_version(version: str | None) -> None:
    """Refuse (400) a chef-client older than MIN_CLIENT_MAJOR by its X-Chef-Version, as Chef's nginx does."""
    if version is None:
        return
    match = _CHEF_VERSION.match(version)
    if match:
        major, minor = int(match.group(1)), int(match.group(2))
        if major >= MIN_CLIENT_MAJOR or (major == 0 and minor == 10):
            return
    raise ChefError(400, {"error": f"400 - Bad Request: Chef Client version {MIN_CLIENT_MAJOR} or higher "
                                   f"required. Your version of Chef is {version}."})
