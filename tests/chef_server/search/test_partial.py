"""Partial search: the bodies erchef (and pedant) reject, and what it extracts from objects."""

from __future__ import annotations

import json

import pytest

from chef_server.search.partial import NO_SUCH_ATTRIBUTE, extract, item_url, parse_body, row, view
from chef_server.search.query import SearchError, client_row

# pedant's test_bad_partial_search_bodies, with erchef's messages.
BAD_BODIES = [
    (b"z[$blah", "invalid JSON"),
    (b"", "invalid JSON"),
    (json.dumps({"a_string": "blah"}), "Invalid value 'blah' for no_key"),
    (json.dumps({"a_number": 1}), "Invalid value '1' for no_key"),
    (json.dumps({"a_true": True}), "Invalid value 'true' for no_key"),
    (json.dumps({"an_object": {"oop": True}}), "Invalid value '{[{<<\"oop\">>,true}]}' for no_key"),
    (json.dumps({"an_array": [1, 2]}), "Invalid value '1' for no_key"),
    (json.dumps({"an_array": ["a", 2]}), "Invalid value '2' for no_key"),
    (json.dumps({"an_array": ["a", 2.5]}), "Invalid value '2.5' for no_key"),
    (json.dumps({"an_array": ["a", ["b"]]}), "Invalid value '[<<\"b\">>]' for no_key"),
    (json.dumps(["a"]), "invalid partial search request body"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_bodies_are_400(body: bytes | str, message: str) -> None:
    with pytest.raises(SearchError) as raised:
        parse_body(body)
    assert (raised.value.status, raised.value.message) == (400, message)


def test_paths_in_order_and_an_empty_body_asks_for_whole_objects() -> None:
    assert parse_body('{"ip": ["ipaddress"], "k": ["kernel", "release"], "none": []}') == [
        ("ip", ["ipaddress"]), ("k", ["kernel", "release"]), ("none", [])]
    assert parse_body("{}") == []


OBJ = {"top": {"middle": {"bottom": "found_it"}, "list": [1, 2], "nothing": None, "text": "t", "n": 5,
               "flag": False}}


@pytest.mark.parametrize(("path", "value"), [
    (["top", "middle", "bottom"], "found_it"),
    (["top", "middle"], {"bottom": "found_it"}),
    (["top", "flag"], False),
    (["top", "list"], [1, 2]),
    (["top", "nothing"], None),
    (["missing"], None),
    (["top", "missing", "deeper"], None),
    (["top", "list", "0"], None),           # no indexing into arrays
    (["top", "nothing", "x"], None),
    (["top", "text", "x"], NO_SUCH_ATTRIBUTE),  # through a string
    (["top", "n", "x"], NO_SUCH_ATTRIBUTE),
    (["top", "flag", "x"], NO_SUCH_ATTRIBUTE),
    ([], None),
])
def test_extract(path: list[str], value: object) -> None:
    assert extract(OBJ, path) == value


NODE = {"name": "web1", "chef_environment": "prod", "run_list": ["role[web]"], "policy_name": "p",
        "default": {"one": "default", "two": "default", "three": "default", "four": "default"},
        "normal": {"two": "normal", "three": "normal", "four": "normal"},
        "override": {"three": "override", "four": "override"},
        "automatic": {"four": "automatic", "testing": {"one": "automatic"}}}


def test_node_paths_see_merged_attributes_and_top_level_keys() -> None:
    paths = parse_body(json.dumps({"one": ["one"], "two": ["two"], "three": ["three"], "four": ["four"],
                                   "t": ["testing"], "env": ["chef_environment"], "roles": ["role"],
                                   "policy": ["policy_name"], "level": ["automatic"]}))
    assert row("https://chef", "acme", "node", NODE, paths) == {
        "url": "https://chef/organizations/acme/nodes/web1",
        "data": {"one": "default", "two": "normal", "three": "override", "four": "automatic",
                 "t": {"one": "automatic"}, "env": "prod", "roles": ["web"], "policy": None, "level": None}}


def test_urls_per_index() -> None:
    assert item_url("https://c", "acme", "role", {"name": "web"}) == "https://c/organizations/acme/roles/web"
    assert item_url("https://c", "acme", "environment", {"name": "prod"}) == \
        "https://c/organizations/acme/environments/prod"
    assert item_url("https://c", "acme", "users", {"id": "alice"}) == "https://c/organizations/acme/data/users/alice"
    client = client_row("web1", False, "acme")
    assert row("https://c", "acme", "client", client, [("v", ["validator"])]) == {
        "url": "https://c/organizations/acme/clients/web1", "data": {"v": False}}


def test_data_bag_items_are_searched_as_stored() -> None:
    item = {"id": "alice", "shell": "/bin/bash"}
    assert view("users", item) is item
    assert row("https://c", "acme", "users", item, [("s", ["shell"]), ("bag", ["data_bag"])])["data"] == \
        {"s": "/bin/bash", "bag": None}
