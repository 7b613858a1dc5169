"""The searchable form of a stored Chef object, as erchef indexes it (chef_index_expand and the
objects' indexing views), and the `_bulk` lines that put it into or take it out of the index.

A document is the object flattened into `key__=__value` pairs in one `content` field: nested keys
are joined with `_` and every leaf is also listed under its own key (`kernel_machine` and
`machine`), an object's keys are values of their parent key, array elements are values of the
array's key, `null` is the empty string. Pairs are de-duplicated and sorted. Nodes are indexed on
their deep-merged attributes; data bag items carry their bag's name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from chef_server.search.mapping import (
    CONTENT_FIELD,
    DATA_BAG_FIELD,
    DATABASE_FIELD,
    ID_FIELD,
    INDEX,
    TYPE_FIELD,
    database_name,
)

STANDARD_TYPES = ("node", "role", "environment", "client")
DATA_BAG_ITEM = "data_bag_item"
SEPARATOR = "__=__"


# --- flattening -----------------------------------------------------------------------------

def flatten(obj: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """The `content` field for a JSON object (or its key/value pairs, duplicates kept): every
    `key__=__value ` pair, sorted by key then value, without duplicates, each followed by one
    space. (erchef sorts UTF-8 binaries bytewise; code point order is the same order.)"""
    pairs: set[tuple[str, str]] = set()
    items = obj.items() if isinstance(obj, Mapping) else obj
    for key, value in items:
        _expand(key, key, False, value, pairs)
    # A node's 120 KB of ohai output makes ~16 000 pairs, flattened on an API worker's event loop at each
    # write: "key NUL value" strings sort as the (key, value) pairs do and join in one pass, three times
    # faster — unless a key or value holds a NUL itself (then the count of NULs tells, and pairs are sorted).
    keyed = sorted(f"{k}\0{v}" for k, v in pairs)
    text = " ".join(keyed)
    if text.count("\0") == len(keyed):
        return text.replace("\0", SEPARATOR) + " " if keyed else ""
    return "".join(f"{k}{SEPARATOR}{v} " for k, v in sorted(pairs))


def flatten_pairs(content: str) -> list[tuple[str, str]]:
    """The pairs of a `content` field, in order (the inverse of `flatten` for keys and values
    without spaces or separators)."""
    return [tuple(p.split(SEPARATOR, 1)) for p in content.split(" ") if p]  # type: ignore[misc]


def _expand(path: str, key: str, nested: bool, value: Any, pairs: set[tuple[str, str]]) -> None:
    """Add the pairs of `value`, found at `key`; `path` is the keys down to it joined with `_`
    (the same as `key` at the top, where `nested` is False). A key is also a value of its parent."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping):
        for inner_key, inner in value.items():
            pairs.add((key, inner_key))
            if nested:
                pairs.add((path, inner_key))
            _expand(f"{path}_{inner_key}", inner_key, True, inner, pairs)
        return
    elif isinstance(value, list | tuple):
        for element in value:
            _expand(path, key, nested, element, pairs)
        return
    else:
        text = leaf_text(value)
    pairs.add((key, text))
    if nested:
        pairs.add((path, text))


def leaf_text(value: Any) -> str:
    """A JSON leaf as erchef writes it into a pair."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return erlang_float(value)
    raise TypeError(f"not a JSON value: {value!r}")


def erlang_float(value: float) -> str:
    """A float as Erlang's `~p` prints it (erchef formats floats so): the shortest digits that read
    back to the same float, in plain notation unless scientific notation is shorter or the
    magnitude reaches 2^53 (`1.23`, `100.0`, `1.0e3`, `0.001`, `1.0e-4`)."""
    if not math.isfinite(value):
        raise ValueError(f"not a JSON number: {value!r}")
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    exact = Decimal(repr(abs(value))).as_tuple()  # repr: the shortest round-trip digits
    digits = "".join(map(str, exact.digits))
    place = int(exact.exponent)
    stripped = digits.rstrip("0")
    place += len(digits) - len(stripped)
    digits = stripped
    return sign + _insert_decimal(place, digits, abs(value))


def _insert_decimal(place: int, digits: str, magnitude: float) -> str:
    """`digits` × 10^`place` in plain or scientific notation, by Erlang's rule."""
    length = len(digits)
    exponent = place + length - 1
    exp_text = str(exponent)
    exp_cost = len(exp_text) + 2
    if place < 0:
        if exponent >= 0:
            return f"{digits[:length + place]}.{digits[length + place:]}"
        if 2 - place - length <= exp_cost:
            return "0." + "0" * (-place - length) + digits
        return _scientific(exp_text, digits)
    dot = 1 if length == 1 else 0
    if exp_cost + dot >= place + 2 and magnitude < float(1 << 53):
        return digits + "0" * place + ".0"
    return _scientific(exp_text, digits)


def _scientific(exp_text: str, digits: str) -> str:
    if len(digits) == 1:
        return f"{digits}.0e{exp_text}"
    return f"{digits[0]}.{digits[1:]}e{exp_text}"


# --- what each object type indexes ----------------------------------------------------------

def deep_merge(base: Any, other: Any) -> Any:
    """Chef's attribute merge as erchef does it: objects merge key by key, anything else (arrays,
    scalars, null) in `other` replaces what `base` has."""
    if isinstance(base, Mapping) and isinstance(other, Mapping):
        merged = dict(base)
        for key, value in other.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return other


def merged_attributes(node: Mapping[str, Any]) -> dict[str, Any]:
    """default < normal < override < automatic."""
    merged: Any = {}
    for level in ("default", "normal", "override", "automatic"):
        merged = deep_merge(merged, node.get(level, {}))
    return dict(merged) if isinstance(merged, Mapping) else {}


def _run_list_items(run_list: Iterable[Any], prefix: str) -> list[str]:
    # erchef drops the prefix and the last character (the closing bracket).
    return [item[len(prefix):-1] for item in run_list if isinstance(item, str) and item.startswith(prefix)]


def node_view(node: Mapping[str, Any], with_policy: bool = True) -> dict[str, Any]:
    """What a node is indexed (and partially searched) on: its merged attributes, over which
    `name`, `chef_type`, `chef_environment`, `recipe`, `role`, `run_list` and, when the node's
    JSON has them (even null), `policy_name` and `policy_group` win. Partial search uses the view
    without policy keys, as erchef does (it builds that view from a record that has none; so does
    its reindex, which is why a reindexed erchef loses them)."""
    run_list = node.get("run_list") or []
    view = merged_attributes(node)
    view.update({
        "name": node.get("name"),
        "chef_type": "node",
        "chef_environment": node.get("chef_environment", "_default"),
        "recipe": _run_list_items(run_list, "recipe["),
        "role": _run_list_items(run_list, "role["),
        "run_list": run_list,
    })
    if with_policy:
        view.update({key: node[key] for key in ("policy_name", "policy_group") if key in node})
    return view


def role_view(role: Mapping[str, Any]) -> dict[str, Any]:
    """A role without its `_default` environment run list (that one is `run_list`)."""
    env_run_lists = role.get("env_run_lists")
    if not isinstance(env_run_lists, Mapping):
        env_run_lists = {}
    return {**role, "env_run_lists": {k: v for k, v in env_run_lists.items() if k != "_default"}}


def data_bag_item_view(bag: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A data bag item as stored (its `id` and data), with `chef_type` and `data_bag` set."""
    return {**item, "chef_type": DATA_BAG_ITEM, "data_bag": bag}


def indexed_view(kind: str, obj: Mapping[str, Any], data_bag: str | None = None) -> dict[str, Any]:
    """The JSON erchef flattens for an object of `kind` (node, role, environment, client or
    data_bag_item; environments and clients as stored)."""
    if kind == "node":
        return node_view(obj)
    if kind == "role":
        return role_view(obj)
    if kind == DATA_BAG_ITEM:
        if data_bag is None:
            raise ValueError("a data bag item is indexed with its bag's name")
        return data_bag_item_view(data_bag, obj)
    if kind in ("environment", "client"):
        return dict(obj)
    raise ValueError(f"{kind!r} objects are not searchable")


# --- documents and bulk lines ---------------------------------------------------------------

def document(kind: str, object_id: str, org_id: str, obj: Mapping[str, Any],
             data_bag: str | None = None) -> dict[str, str]:
    """The indexed document (`_source` as sent) for a stored object: `content`, then `data_bag`
    for data bag items, then the id, database and type fields, in erchef's order. `object_id` is
    the object's 32-hex id, `org_id` the organization's."""
    view = indexed_view(kind, obj, data_bag)
    database = database_name(org_id)
    meta = [(ID_FIELD, object_id), (DATABASE_FIELD, database), (TYPE_FIELD, kind)]
    doc = {CONTENT_FIELD: flatten([*meta, *view.items()])}
    if kind == DATA_BAG_ITEM:
        doc[DATA_BAG_FIELD] = data_bag  # type: ignore[assignment]
    doc.update(dict(meta))
    return doc


def _json(value: Any) -> str:
    # jiffy's encoding: compact, UTF-8 kept as is.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def bulk_index_lines(object_id: str, doc: Mapping[str, str]) -> str:
    """The two `_bulk` lines (newline-terminated) that index `doc` under `object_id`: typeless,
    as erchef sends them to Elasticsearch 7."""
    return _json({"index": {"_index": INDEX, "_id": object_id}}) + "\n" + _json(doc) + "\n"


def bulk_delete_line(object_id: str) -> str:
    """The `_bulk` line that deletes a document, byte for byte as erchef writes it."""
    return '{"delete":{"_index":"' + INDEX + '","_id":' + _json(object_id) + ' }}\n'


def org_delete_query(org_id: str, kind: str | None = None) -> dict[str, Any]:
    """The body of `POST /chef/_delete_by_query` (then `POST /_refresh`) that removes an
    organization's documents, or only those of one type. (erchef's by-type form runs the two
    terms together without a space, so it matches nothing; this one does what it says.)"""
    query = f"{DATABASE_FIELD}:{database_name(org_id)}"
    if kind is not None:
        query += f" AND {TYPE_FIELD}:{kind}"
    return {"query": {"query_string": {"query": query}}}
