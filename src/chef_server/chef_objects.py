"""Nodes, roles, environments, data bags and data bag items: erchef's validation, defaults and
normalisation of request bodies, with its 400 messages (pure; chef_objects' rules).

Each `*_from_body` takes the parsed JSON body and returns the object as it is stored and answered,
or raises a ChefError with erchef's message.
"""

from __future__ import annotations

import re
from typing import Any

from .depsolver.constraints import is_valid_constraint
from .errors import ChefError, bad_request

_NAME = r"[.A-Za-z0-9_-]+"
NAME = re.compile(rf"^{_NAME}$")                      # environments, cookbooks
ALT_NAME = re.compile(r"^[.A-Za-z0-9_:-]+$")          # nodes, roles, data bags and items
POLICY_NAME = re.compile(r"^[.A-Za-z0-9_:-]{1,255}$")
_VERSIONED_RECIPE = rf"(?:{_NAME}::)?{_NAME}(?:@[0-9]+(?:\.[0-9]+){{1,2}})?"
_RUN_LIST_ITEM = re.compile(rf"^(?:role\[{_NAME}\]|recipe\[{_VERSIONED_RECIPE}\]|{_VERSIONED_RECIPE})$")

NODE_KEYS = ("name", "chef_environment", "json_class", "chef_type", "normal", "default", "override", "automatic",
             "run_list", "policy_name", "policy_group")
ROLE_KEYS = ("chef_type", "default_attributes", "description", "env_run_lists", "json_class", "name",
             "override_attributes", "run_list")
ENVIRONMENT_KEYS = ("name", "description", "json_class", "chef_type", "default_attributes", "override_attributes",
                    "cookbook_versions")
_HASH_FIELDS = ("normal", "default", "override", "automatic", "default_attributes", "override_attributes",
                "cookbook_versions")

DEFAULT_ENVIRONMENT = "_default"


def invalid(field: str) -> ChefError:
    return bad_request(f"Field '{field}' invalid")


def _json_type(field: str) -> ChefError:
    """erchef's message for a field of the wrong JSON type."""
    if field in _HASH_FIELDS:
        return bad_request(f"Field '{field}' is not a hash")
    if field == "run_list":
        return bad_request("Field 'run_list' is not a valid run list")
    if field == "env_run_lists":
        return bad_request("Field 'env_run_lists' contains invalid run lists")
    return invalid(field)


def _with_defaults(data: dict, defaults: dict) -> dict:
    out = dict(data)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value() if callable(value) else value
    return out


def _allowed_keys(data: dict, keys: tuple[str, ...]) -> None:
    for key in data:
        if key not in keys:
            raise bad_request(f"Invalid key {key} in request body")


def _string_match(data: dict, field: str, pattern: re.Pattern, optional: bool = False) -> None:
    if field not in data:
        if optional:
            return
        raise bad_request(f"Field '{field}' missing")
    value = data[field]
    if not isinstance(value, str) or not pattern.match(value):
        raise invalid(field)


def _exact(data: dict, field: str, expected: str) -> None:
    if field not in data:
        raise bad_request(f"Field '{field}' missing")
    if data[field] != expected:
        raise invalid(field)


def _hash(data: dict, field: str) -> None:
    if field not in data:
        raise bad_request(f"Field '{field}' missing")
    if not isinstance(data[field], dict):
        raise _json_type(field)


def valid_run_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, str) and _RUN_LIST_ITEM.match(i) for i in value)


def _run_list(data: dict, field: str = "run_list") -> None:
    if field not in data:
        raise bad_request(f"Field '{field}' missing")
    if not valid_run_list(data[field]):
        raise _json_type(field)


def normalize_run_list(run_list: list[str]) -> list[str]:
    """Bare recipes become `recipe[...]`; duplicates go, the first of each stays in place."""
    seen: set[str] = set()
    out = []
    for item in run_list:
        item = item if item.startswith(("role[", "recipe[")) else f"recipe[{item}]"
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _named_for_update(data: dict, url_name: str | None, kind: str, field: str = "name") -> dict:
    """On PUT the body's name (if any) must be the URL's (no renames), else "<Kind> name mismatch."."""
    if url_name is None:
        return data
    if field in data and data[field] != url_name:
        raise bad_request(f"{kind} name mismatch.")
    return {**data, field: url_name}


_NODE_DEFAULTS: dict[str, Any] = {"chef_environment": DEFAULT_ENVIRONMENT, "json_class": "Chef::Node",
                                  "chef_type": "node", "normal": dict, "default": dict, "override": dict,
                                  "automatic": dict, "run_list": list}


def node_from_body(data: dict, url_name: str | None = None) -> dict:
    """A node from a POST (url_name None) or PUT body."""
    node = _named_for_update(_with_defaults(data, _NODE_DEFAULTS), url_name, "Node")
    _allowed_keys(node, NODE_KEYS)
    _string_match(node, "name", ALT_NAME)
    _string_match(node, "chef_environment", NAME)
    _exact(node, "json_class", "Chef::Node")
    _exact(node, "chef_type", "node")
    for field in ("normal", "default", "override", "automatic"):
        _hash(node, field)
    _run_list(node)
    _string_match(node, "policy_name", POLICY_NAME, optional=True)
    _string_match(node, "policy_group", POLICY_NAME, optional=True)
    node["run_list"] = normalize_run_list(node["run_list"])
    return node


_ROLE_DEFAULTS: dict[str, Any] = {"json_class": "Chef::Role", "chef_type": "role", "default_attributes": dict,
                                  "override_attributes": dict, "run_list": list, "env_run_lists": dict}


def role_from_body(data: dict, url_name: str | None = None) -> dict:
    """A role from a POST or PUT body, its run lists normalised."""
    role = _named_for_update(_with_defaults(data, _ROLE_DEFAULTS), url_name, "Role")
    _allowed_keys(role, ROLE_KEYS)
    _string_match(role, "name", ALT_NAME)
    _exact(role, "json_class", "Chef::Role")
    _exact(role, "chef_type", "role")
    _hash(role, "default_attributes")
    _hash(role, "override_attributes")
    _run_list(role)
    env_run_lists = role["env_run_lists"]
    if not isinstance(env_run_lists, dict):
        raise _json_type("env_run_lists")
    for env, run_list in env_run_lists.items():
        if not NAME.match(env):
            raise bad_request(f"Invalid key '{env}' for env_run_lists")
        if not valid_run_list(run_list):
            raise _json_type("env_run_lists")
    role["run_list"] = normalize_run_list(role["run_list"])
    role["env_run_lists"] = {env: normalize_run_list(rl) for env, rl in env_run_lists.items()}
    return role


def role_environments(role: dict) -> list[str]:
    """`GET /roles/R/environments`: `_default` and every environment with its own run list, sorted."""
    return sorted({DEFAULT_ENVIRONMENT, *(role.get("env_run_lists") or {})})


def role_run_list_for(role: dict, environment: str) -> list[str] | None:
    """The role's run list in an environment (`run_list` for `_default`), None when it has none there."""
    if environment == DEFAULT_ENVIRONMENT:
        return role.get("run_list")
    return (role.get("env_run_lists") or {}).get(environment)


_ENV_DEFAULTS: dict[str, Any] = {"description": "", "json_class": "Chef::Environment", "chef_type": "environment",
                                 "default_attributes": dict, "override_attributes": dict,
                                 "cookbook_versions": dict}


def environment_from_body(data: dict) -> dict:
    """An environment from a POST or PUT body (a PUT may rename it)."""
    env = _with_defaults(data, _ENV_DEFAULTS)
    _string_match(env, "name", NAME)
    if not isinstance(env["description"], str):
        raise invalid("description")
    _exact(env, "json_class", "Chef::Environment")
    _exact(env, "chef_type", "environment")
    _hash(env, "default_attributes")
    _hash(env, "override_attributes")
    _hash(env, "cookbook_versions")
    for cookbook, constraint in env["cookbook_versions"].items():
        if not NAME.match(cookbook):
            raise bad_request(f"Invalid key '{cookbook}' for cookbook_versions")
        if not is_valid_constraint(constraint):
            raise bad_request(f"Invalid value '{_text(constraint)}' for cookbook_versions")
    _allowed_keys(env, ENVIRONMENT_KEYS)
    return env


def default_environment() -> dict:
    """The `_default` environment every organization has (and nobody may change)."""
    return _with_defaults({"name": DEFAULT_ENVIRONMENT, "description": "The default Chef environment"},
                          _ENV_DEFAULTS)


def data_bag_from_body(data: dict) -> str:
    """The new bag's name from `POST /data`."""
    _string_match(data, "name", ALT_NAME)
    return data["name"]


def is_wrapped_item(data: dict) -> bool:
    return "raw_data" in data and data.get("json_class") == "Chef::DataBagItem"


def data_bag_item_from_body(data: dict, url_id: str | None = None) -> dict:
    """An item from `POST /data/BAG` or `PUT /data/BAG/ITEM` (wrapped items are unwrapped). Its
    content is opaque (encrypted items too): only `id` is checked."""
    item = data["raw_data"] if is_wrapped_item(data) else data
    if not isinstance(item, dict):
        raise bad_request("Incorrect JSON type for request body")
    item = _named_for_update(item, url_id, "DataBagItem", field="id")
    _string_match(item, "id", ALT_NAME)
    return item


def item_with_type(bag: str, item: dict) -> dict:
    """What POST and PUT of an item answer: the item with `chef_type` and `data_bag`."""
    return {**item, "chef_type": "data_bag_item", "data_bag": bag}


def wrapped_item(bag: str, item: dict) -> dict:
    """What DELETE of an item answers."""
    return {"name": f"data_bag_item_{bag}_{item.get('id')}", "json_class": "Chef::DataBagItem",
            "chef_type": "data_bag_item", "data_bag": bag, "raw_data": item}


def _text(value: Any) -> str:
    """A JSON value as erchef prints it in "Invalid value" messages (Erlang's rendering of the term;
    lists of fewer than two elements come out as `[huh]` there)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, list):
        if len(value) < 2:
            return "[huh]"
        return "[" + ",".join(f'<<"{v}">>' if isinstance(v, str) else _text(v) for v in value) + "]"
    return str(value)

