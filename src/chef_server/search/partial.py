"""Partial search as erchef does it: `POST /organizations/ORG/search/INDEX?q=...` with a body
naming attribute paths, `{"ip": ["ipaddress"], "kernel": ["kernel", "release"]}`, answers each
found object as `{"url": ..., "data": {"ip": ..., "kernel": ...}}` inside the usual
`{"total", "start", "rows"}`. An empty body object (`{}`) asks for whole objects, as GET does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chef_server.search.document import erlang_float, node_view
from chef_server.search.query import SearchError, is_data_bag_index

Paths = list[tuple[str, list[str]]]

NO_SUCH_ATTRIBUTE = "ERROR - Attribute does not exist"


def parse_body(raw: bytes | str) -> Paths:
    """The requested (name, path) pairs, in the body's order; SearchError (400) with erchef's
    message for a body that is not JSON or whose values are not arrays of strings. (For a body
    that is JSON but not an object erchef fails with a 500; this answers 400.) erchef checks the
    query parameters (`query.search_query`) first."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SearchError(400, "invalid JSON") from None
    if not isinstance(body, dict):
        raise SearchError(400, "invalid partial search request body")
    paths: Paths = []
    for name, path in body.items():
        if not isinstance(path, list):
            raise _invalid_value(path)
        for element in path:
            if not isinstance(element, str):
                raise _invalid_value(element)
        paths.append((name, path))
    return paths


def _invalid_value(found: Any) -> SearchError:
    # erchef's validator reports the offending value under the placeholder key "no_key".
    return SearchError(400, f"Invalid value '{_erlang_text(found)}' for no_key")


def _erlang_text(value: Any) -> str:
    """A JSON value as erchef puts it into that message: strings, integers and true/false/null
    as themselves, anything else as Erlang prints the decoded term (`~p`, on one line)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    return _erlang_term(value)


def _erlang_term(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return erlang_float(value)
    if isinstance(value, str):
        return '<<"' + value.replace("\\", "\\\\").replace('"', '\\"') + '">>'
    if isinstance(value, list):
        return "[" + ",".join(_erlang_term(v) for v in value) + "]"
    pairs = ",".join("{" + _erlang_term(k) + "," + _erlang_term(v) + "}" for k, v in value.items())
    return "{[" + pairs + "]}"


def view(index: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON the paths are looked up in: a node's merged attributes with its top-level keys
    (as indexed, without policy keys), a data bag item's own data, a client as search returns it
    (`query.client_row`), other objects as stored."""
    if index == "node":
        return node_view(obj, with_policy=False)
    return obj


def extract(obj: Any, path: list[str]) -> Any:
    """The value at `path` in `obj`: null when a key is missing or the path runs through null or
    an array (or the path is empty), erchef's error string when it runs through a string,
    number or boolean."""
    if not path:
        return None
    current = obj
    for key in path:
        if isinstance(current, Mapping):
            if key not in current:
                return None
            current = current[key]
        elif current is None or isinstance(current, list):
            return None
        else:
            return NO_SUCH_ATTRIBUTE
    return current


def item_url(base_url: str, org_name: str, index: str, obj: Mapping[str, Any]) -> str:
    """The API URL of a found object: data bag items by bag and `id`, clients by `clientname`,
    the rest by `name`."""
    if is_data_bag_index(index):
        return f"{base_url}/organizations/{org_name}/data/{index}/{obj.get('id')}"
    key = "clientname" if index == "client" else "name"
    return f"{base_url}/organizations/{org_name}/{index}s/{obj.get(key)}"


def row(base_url: str, org_name: str, index: str, obj: Mapping[str, Any], paths: Paths) -> dict[str, Any]:
    """One partial search result for the stored object `obj` (for clients: `query.client_row`)."""
    seen = view(index, obj)
    return {"url": item_url(base_url, org_name, index, seen),
            "data": {name: extract(seen, path) for name, path in paths}}
