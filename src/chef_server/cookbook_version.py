"""Cookbook version documents (pure): erchef's validation and messages, API v0/v1 and v2 shapes, file URLs.

A version is stored as uploaded (defaults filled in). v0/v1 clients see per-segment file lists
(`recipes`, `templates`, ...); v2 clients see one `all_files` list whose names carry the segment
(`recipes/default.rb`), whatever shape it was uploaded in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from .depsolver import is_valid_constraint
from .errors import ChefError, bad_request

SEGMENTS = ("attributes", "definitions", "files", "libraries", "providers", "recipes", "resources", "root_files",
            "templates")
NAME = re.compile(r"^[.A-Za-z0-9_-]+$", re.ASCII)
NAME_MESSAGE = "Malformed cookbook name. Must only contain A-Z, a-z, 0-9, _, . or -"
MAX_VERSION_PART = 9223372036854775807
_VALID_KEYS = frozenset(("chef_type", "cookbook_name", "frozen?", "json_class", "metadata", "name", "version",
                        *SEGMENTS))
_VALID_KEYS_V2 = frozenset(("all_files", "chef_type", "cookbook_name", "frozen?", "json_class", "metadata", "name",
                            "version"))
_METADATA_STRINGS = ("description", "long_description", "maintainer", "maintainer_email", "license")
_CONSTRAINT_MAPS = ("platforms", "dependencies", "recommendations", "suggestions", "conflicting", "replacing")
_FILE_FIELDS = ("name", "path", "checksum", "specificity")
DEFAULTS = {"json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": False}


def parse_version(text: str) -> tuple[int, int, int]:
    """`x`, `x.y` or `x.y.z` of non-negative integers as (major, minor, patch); ValueError otherwise."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(text)
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    if any(n > MAX_VERSION_PART for n in numbers):
        raise ValueError(text)
    return numbers[0], numbers[1], numbers[2]


def version_string(version: tuple[int, int, int]) -> str:
    return ".".join(str(n) for n in version)


def check_url(name: str, version: str) -> tuple[int, int, int]:
    """The URL's cookbook name and version, or erchef's 400s."""
    if not NAME.match(name):
        raise bad_request(f"Invalid cookbook name '{name}' using regex: '{NAME_MESSAGE}'.")
    try:
        return parse_version(version)
    except ValueError:
        raise bad_request(f"Invalid cookbook version '{version}'.") from None


def erlang_repr(value: object) -> str:
    """How erchef prints a JSON value inside a message (objects are Erlang's `{[...]}`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{[" + ",".join(f"{{<<\"{k}\">>,{erlang_repr(v)}}}" for k, v in value.items()) + "]}"
    if isinstance(value, list):
        return "[" + ",".join(erlang_repr(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def _invalid(field: str) -> ChefError:
    return bad_request(f"Field '{field}' invalid")


def _exact(doc: dict, key: str, expected: str, path: str | None = None) -> None:
    path = path or key
    if key not in doc:
        raise bad_request(f"Field '{path}' missing")
    if doc[key] != expected:
        raise _invalid(path)


def check_constraint_map(value: object, path: str) -> None:
    """An object of cookbook name -> version constraint (metadata dependencies, platforms, ...)."""
    if not isinstance(value, dict):
        raise _invalid(path)
    for key, constraint in value.items():
        if not NAME.match(key):
            raise bad_request(f"Invalid key '{key}' for {path}")
        if not isinstance(constraint, str) or not is_valid_constraint(constraint):
            raise bad_request(f"Invalid value '{erlang_repr(constraint)}' for {path}")


def check_file_list(value: object, segment: str) -> None:
    if not isinstance(value, list):
        raise _invalid(segment)
    for item in value:
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in _FILE_FIELDS):
            raise bad_request(f"Invalid element in array value of '{segment}'.")


def validate(doc: dict, url_name: str, url_version: str, all_files: bool) -> dict:
    """The document to store for PUT /cookbooks/NAME/VERSION (defaults filled in), or erchef's 400 (in its order)."""
    doc = {**DEFAULTS, **doc}
    for key in doc:
        if key not in (_VALID_KEYS_V2 if all_files else _VALID_KEYS):
            raise bad_request(f"Invalid key {key} in request body")
    _exact(doc, "name", f"{url_name}-{url_version}")
    _exact(doc, "cookbook_name", url_name)
    _exact(doc, "json_class", "Chef::CookbookVersion")
    _exact(doc, "chef_type", "cookbook_version")
    if "metadata" not in doc:
        raise bad_request("Field 'metadata' missing")
    metadata = doc["metadata"]
    if not isinstance(metadata, dict):
        raise _invalid("metadata")
    _exact(metadata, "version", url_version, "metadata.version")
    if "name" in metadata and not (isinstance(metadata["name"], str) and NAME.match(metadata["name"])):
        raise _invalid("metadata.name")
    for key in _METADATA_STRINGS:
        if key in metadata and not isinstance(metadata[key], str):
            raise _invalid(f"metadata.{key}")
    for key in _CONSTRAINT_MAPS if not all_files else ("platforms", "dependencies"):
        if key in metadata:
            check_constraint_map(metadata[key], f"metadata.{key}")
    if not all_files and "groupings" in metadata and not isinstance(metadata["groupings"], dict):
        raise _invalid("metadata.groupings")
    for segment in ("all_files",) if all_files else SEGMENTS:
        if segment in doc:
            check_file_list(doc[segment], segment)
    if "version" in doc and doc["version"] != url_version:
        raise _invalid("version")
    if not isinstance(doc["frozen?"], bool):
        raise _invalid("frozen?")
    return doc


def checksums(doc: dict) -> list[str]:
    """Every file checksum the document references, sorted, once each."""
    return sorted({f["checksum"] for seg in ("all_files", *SEGMENTS) for f in doc.get(seg) or []})


def to_all_files(doc: dict) -> dict:
    """The v2 shape: one `all_files` list, names prefixed by their segment (root files keep their name)."""
    if "all_files" in doc:
        return doc
    out = {k: v for k, v in doc.items() if k not in SEGMENTS}
    out["all_files"] = [{**f, "name": f"{segment}/{f['name']}"} for segment in SEGMENTS for f in doc.get(segment) or []]
    return out


def to_segments(doc: dict) -> dict:
    """The v0/v1 shape: per-segment lists (a name without a segment directory is a root file)."""
    if "all_files" not in doc:
        return doc
    out = {k: v for k, v in doc.items() if k != "all_files"}
    lists: dict[str, list] = {segment: [] for segment in SEGMENTS}
    for f in doc["all_files"]:
        segment, sep, rest = f["name"].partition("/")
        if not sep:
            lists["root_files"].append(f)
        else:
            lists.setdefault(segment, []).append({**f, "name": rest})
    out.update(lists)
    return out


def with_urls(doc: dict, url_for: Callable[[str], str]) -> dict:
    """Every file entry with a download `url` for its checksum."""
    out = dict(doc)
    for segment in ("all_files", *SEGMENTS):
        if isinstance(doc.get(segment), list):
            out[segment] = [{**f, "url": url_for(f["checksum"])} for f in doc[segment]]
    return out


def for_client(doc: dict, frozen: bool, all_files: bool, url_for: Callable[[str], str]) -> dict:
    """A stored version as GET answers it: the client's shape, URLs, `frozen?`, metadata defaults."""
    shaped = to_all_files(doc) if all_files else to_segments(doc)
    out = with_urls(shaped, url_for)
    out["frozen?"] = frozen
    out["metadata"] = {"attributes": {}, "dependencies": {}, "long_description": "", **doc["metadata"]}
    return out


def qualified_recipes(cookbook: str, doc: dict) -> list[str]:
    """`cookbook` for recipes/default.rb, `cookbook::name` for the others (erchef's _recipes)."""
    if "all_files" in doc:
        names = [f["name"].split("/", 1)[1] for f in doc["all_files"] if f["name"].startswith("recipes/")]
    else:
        names = [f["name"] for f in doc.get("recipes") or []]
    out = []
    for name in names:
        base = name.rsplit("/", 1)[-1]
        base = base[:-3] if base.endswith(".rb") else base
        out.append(cookbook if base == "default" else f"{cookbook}::{base}")
    return out
