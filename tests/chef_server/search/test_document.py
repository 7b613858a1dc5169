"""Documents as erchef indexes them: its own expectations (chef_index_expand_tests,
chef_node_tests), the exact `_bulk` bytes it sends to Elasticsearch 7, and properties of
flattening."""

from __future__ import annotations

import html
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server.search.document import (
    bulk_delete_line,
    bulk_index_lines,
    deep_merge,
    document,
    erlang_float,
    flatten,
    flatten_pairs,
    indexed_view,
    merged_attributes,
    node_view,
    org_delete_query,
)
from chef_server.search.mapping import index_body


def pairs(text: str) -> str:
    """erchef's expectations, written for its Solr mode (XML-escaped), as Elasticsearch gets them."""
    return html.unescape(text)


def test_scalars() -> None:
    obj = {"a_null": None, "a_true": True, "a_false": False, "a_int": 2, "a_float": 1.23,
           "a_string": "hello", "q1": 'with "quotes"', 'q2 "2"': "with quotes in key"}
    assert flatten(obj) == ('a_false__=__false a_float__=__1.23 a_int__=__2 a_null__=__ a_string__=__hello '
                            'a_true__=__true q1__=__with "quotes" q2 "2"__=__with quotes in key ')


def test_arrays_nested_arrays_and_duplicates() -> None:
    obj = {"k1": [None, True, False, "a", 0, 1.123, ["b", 2], "c", "a"]}
    assert flatten(obj) == ("k1__=__ k1__=__0 k1__=__1.123 k1__=__2 k1__=__a k1__=__b k1__=__c "
                            "k1__=__false k1__=__true ")


def test_nested_objects_join_keys_and_list_leaves_alone() -> None:
    obj = {"k1": ["a1", "a2", ["aa1", "aa2"]], "k2": 5,
           "k3": {"kk1": "h", "kk2": [1, 2],
                  "kk3": {"kkk1": True, "kkk2": "i<&>", "kk&k3": ["j", {"lkk<>k1": 1, "lkkk2": 2}]}}}
    expected = pairs(
        "k1__=__a1 k1__=__a2 k1__=__aa1 k1__=__aa2 k2__=__5 k3__=__kk1 k3__=__kk2 k3__=__kk3 k3_kk1__=__h "
        "k3_kk2__=__1 k3_kk2__=__2 k3_kk3__=__kk&amp;k3 k3_kk3__=__kkk1 k3_kk3__=__kkk2 k3_kk3_kk&amp;k3__=__j "
        "k3_kk3_kk&amp;k3__=__lkk&lt;&gt;k1 k3_kk3_kk&amp;k3__=__lkkk2 k3_kk3_kk&amp;k3_lkk&lt;&gt;k1__=__1 "
        "k3_kk3_kk&amp;k3_lkkk2__=__2 k3_kk3_kkk1__=__true k3_kk3_kkk2__=__i&lt;&amp;&gt; kk&amp;k3__=__j "
        "kk&amp;k3__=__lkk&lt;&gt;k1 kk&amp;k3__=__lkkk2 kk1__=__h kk2__=__1 kk2__=__2 kk3__=__kk&amp;k3 "
        "kk3__=__kkk1 kk3__=__kkk2 kkk1__=__true kkk2__=__i&lt;&amp;&gt; lkk&lt;&gt;k1__=__1 lkkk2__=__2 ")
    assert flatten(obj) == expected


def test_pairs_sort_bytewise_uppercase_first_and_shorter_keys_first() -> None:
    assert flatten({"b": 1, "a": 1, "B": 1, "a_b": 1}) == "B__=__1 a__=__1 a_b__=__1 b__=__1 "
    assert flatten({"a": "x", "aB": "x"}) == "a__=__x aB__=__x "  # keys compare before separators


ROLE_ID, ORG = "a2", "db2"


def test_role_document_and_its_bulk_lines_byte_for_byte() -> None:
    doc = document("role", ROLE_ID, ORG, {"key1": "value1", "key2": "value-2"})
    assert bulk_index_lines(ROLE_ID, doc) == (
        '{"index":{"_index":"chef","_id":"a2"}}\n'
        '{"content":"X_CHEF_database_CHEF_X__=__chef_db2 X_CHEF_id_CHEF_X__=__a2 X_CHEF_type_CHEF_X__=__role '
        'key1__=__value1 key2__=__value-2 ","X_CHEF_id_CHEF_X":"a2","X_CHEF_database_CHEF_X":"chef_db2",'
        '"X_CHEF_type_CHEF_X":"role"}\n')


def test_delete_line_byte_for_byte() -> None:
    assert bulk_delete_line("a2") == '{"delete":{"_index":"chef","_id":"a2" }}\n'


def test_data_bag_item_document() -> None:
    item = {"data_bag": "other", "chef_type": "x", "soccerballs": 2, "baseballs": 4, "id": "balls",
            "footballs": {"round": 2, "egg": 18}}
    doc = document("data_bag_item", "abc123", "dbdb1212", item, data_bag="sport-balls")
    assert list(doc) == ["content", "data_bag", "X_CHEF_id_CHEF_X", "X_CHEF_database_CHEF_X", "X_CHEF_type_CHEF_X"]
    assert doc["data_bag"] == "sport-balls" and doc["X_CHEF_type_CHEF_X"] == "data_bag_item"
    assert doc["content"] == (
        "X_CHEF_database_CHEF_X__=__chef_dbdb1212 X_CHEF_id_CHEF_X__=__abc123 X_CHEF_type_CHEF_X__=__data_bag_item "
        "baseballs__=__4 chef_type__=__data_bag_item data_bag__=__sport-balls egg__=__18 footballs__=__egg "
        "footballs__=__round footballs_egg__=__18 footballs_round__=__2 id__=__balls round__=__2 soccerballs__=__2 ")


def test_an_org_named_with_its_database_prefix_keeps_it() -> None:
    assert document("client", "i", "chef_0a", {})["X_CHEF_database_CHEF_X"] == "chef_0a"


def test_roles_drop_the_default_environment_run_list() -> None:
    role = {"name": "web", "run_list": ["recipe[a]"], "env_run_lists": {"_default": ["recipe[z]"], "prod": ["b"]}}
    content = document("role", "r", "o", role)["content"]
    assert "env_run_lists__=__prod" in content and "_default" not in content and "z]" not in content


# --- nodes ----------------------------------------------------------------------------------

BASIC_NODE = {"name": "a_node", "chef_environment": "_default", "json_class": "Chef::Node",
              "chef_type": "node", "run_list": []}


def top_level(**extra: object) -> dict[str, object]:
    return {"name": "a_node", "chef_type": "node", "chef_environment": "_default", "recipe": [], "role": [],
            "run_list": [], **extra}


@pytest.mark.parametrize(("levels", "merged"), [
    ({"default": {}}, {}),
    ({"default": {"a": 1}}, {"a": 1}),
    ({"default": {"a": 1, "b": 2}, "normal": {"b": 11, "c": 3}}, {"a": 1, "b": 11, "c": 3}),
    ({"default": {"a": [1, 3, 5], "b": [2, 4, 6]}, "normal": {"b": [11]}}, {"a": [1, 3, 5], "b": [11]}),
    ({"default": {"a": 1, "b": 2}, "normal": {"b": 11, "c": 3}, "override": {"b": 22, "d": 4}},
     {"a": 1, "b": 22, "c": 3, "d": 4}),
    ({"default": {"a": 1, "b": [1, 3, 5]}, "normal": {"b": [2, 4, 6], "c": 3}, "override": {"b": [7, 9, 11], "d": 4}},
     {"a": 1, "b": [7, 9, 11], "c": 3, "d": 4}),
    ({"default": {"x": {"y": 1, "z": 1}}, "normal": {"x": {"z": 2}}, "override": {"x": {"w": 3}},
      "automatic": {"x": {"y": 4}}}, {"x": {"y": 4, "z": 2, "w": 3}}),
    ({"default": {"x": {"y": 1}}, "automatic": {"x": None}}, {"x": None}),
])
def test_node_attributes_merge_by_precedence(levels: dict, merged: dict) -> None:
    assert node_view({**BASIC_NODE, **levels}) == top_level(**merged)


def test_top_level_keys_win_over_attributes() -> None:
    node = {**BASIC_NODE, "default": {"name": "x", "role": "y", "policy_name": "p"}}
    assert node_view(node) == top_level(policy_name="p")  # an attribute, not the node's policy


def test_run_list_gives_recipes_and_roles() -> None:
    node = {**BASIC_NODE, "run_list": ["recipe[foo]", "recipe[bar::default]", "recipe[baz::quux@1.0.0]",
                                       "role[prod]"]}
    view = node_view(node)
    assert view["recipe"] == ["foo", "bar::default", "baz::quux@1.0.0"] and view["role"] == ["prod"]
    content = document("node", "n", "o", node)["content"]
    assert "recipe__=__bar::default" in content and "role__=__prod" in content
    assert "run_list__=__role[prod]" in content


def test_policy_keys_when_the_node_has_them() -> None:
    node = {**BASIC_NODE, "policy_name": "example-policy-name", "policy_group": "example-policy-group"}
    assert node_view(node) == top_level(policy_name="example-policy-name", policy_group="example-policy-group")
    assert "policy_name" not in node_view(node, with_policy=False)


def test_node_document_holds_merged_attributes_not_precedence_levels() -> None:
    node = {**BASIC_NODE, "chef_environment": "prod", "normal": {"tags": ["web"]},
            "automatic": {"kernel": {"machine": "x86_64"}, "platform": "debian"}}
    found = set(flatten_pairs(document("node", "n", "o", node)["content"]))
    assert {("kernel_machine", "x86_64"), ("machine", "x86_64"), ("kernel", "machine"), ("platform", "debian"),
            ("tags", "web"), ("chef_environment", "prod"), ("chef_type", "node"), ("name", "a_node")} <= found
    assert not any(key in ("automatic", "normal", "json_class") for key, _ in found)


def test_types_that_are_not_searchable() -> None:
    with pytest.raises(ValueError):
        indexed_view("cookbook", {})
    with pytest.raises(ValueError):
        indexed_view("data_bag_item", {"id": "x"})


def test_org_deletion_query() -> None:
    assert org_delete_query("0a") == {"query": {"query_string": {"query": "X_CHEF_database_CHEF_X:chef_0a"}}}
    by_type = org_delete_query("0a", "node")["query"]["query_string"]["query"]
    assert by_type == "X_CHEF_database_CHEF_X:chef_0a AND X_CHEF_type_CHEF_X:node"


def test_index_body_is_chefs() -> None:
    body = index_body()
    assert body["settings"] == {"analysis": {"analyzer": {"default": {"type": "whitespace"}}},
                                "number_of_shards": 5, "number_of_replicas": 1}
    assert body["mappings"]["_source"] == {"enabled": False}
    props = body["mappings"]["properties"]
    assert props["content"] == {"type": "text", "index": True, "norms": False}
    for field in ("X_CHEF_database_CHEF_X", "X_CHEF_type_CHEF_X", "X_CHEF_id_CHEF_X", "data_bag"):
        assert props[field] == {"type": "keyword", "index": True, "norms": False}


# --- floats as Erlang prints them -----------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (1.23, "1.23"), (1.123, "1.123"), (0.5, "0.5"), (-0.5, "-0.5"), (0.0, "0.0"), (-0.0, "-0.0"),
    (1.0, "1.0"), (100.0, "100.0"), (150.0, "150.0"), (1000.0, "1.0e3"), (1500.0, "1.5e3"),
    (12345.0, "12345.0"), (1234.567, "1234.567"), (0.1, "0.1"), (0.001, "0.001"), (0.0001, "1.0e-4"),
    (0.00015, "1.5e-4"), (1e22, "1.0e22"), (2.0 ** 53, "9.007199254740992e15"), (123456789.0, "123456789.0"),
])
def test_floats_print_as_in_erlang(value: float, text: str) -> None:
    assert erlang_float(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_reads_back(value: float) -> None:
    assert float(erlang_float(value)) == value or (value == 0 and float(erlang_float(value)) == 0)


# --- properties of flattening ---------------------------------------------------------------

keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=" _"), min_size=1,
               max_size=6)
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | \
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=" "), max_size=8)
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(keys, inner, max_size=3), max_leaves=12)
json_objects = st.dictionaries(keys, json_values, max_size=4)


def leaf_paths(value: object, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaf_paths(inner, (*path, key))
    elif isinstance(value, list):
        for inner in value:
            yield from leaf_paths(inner, path)
    else:
        yield path, value


@given(json_objects)
def test_flattening_is_total_sorted_and_unique(obj: dict) -> None:
    content = flatten(obj)
    assert content == "" or content.endswith(" ")
    found = flatten_pairs(content)
    encoded = [(k.encode(), v.encode()) for k, v in found]
    assert encoded == sorted(set(encoded))


@pytest.mark.parametrize("obj", [{"a": "x", "a\0": "y", "a\0b": "z"}, {"k": ["v\0w", "v", "v\0"]},
                                 {"a": {"b\0": 1, "b": 2}}])
def test_keys_and_values_holding_a_nul_still_sort_as_pairs(obj: dict) -> None:
    """The fast path sorts "key NUL value" strings; a NUL of the data itself must not change the order."""
    pairs = set()
    for key, value in obj.items():
        for inner in value if isinstance(value, list) else [value]:
            if isinstance(inner, dict):
                pairs |= {(key, k) for k in inner} | {(f"{key}_{k}", str(v)) for k, v in inner.items()} | \
                         {(k, str(v)) for k, v in inner.items()}
            else:
                pairs.add((key, inner))
    assert flatten(obj) == "".join(f"{k}__=__{v} " for k, v in sorted(pairs))


@given(json_objects)
def test_every_leaf_is_found_under_its_path_and_its_own_key(obj: dict) -> None:
    found = set(flatten_pairs(flatten(obj)))
    for path, leaf in leaf_paths(obj):
        text = flatten({"x": leaf})[len("x__=__"):-1]
        assert ("_".join(path), text) in found and (path[-1], text) in found


@given(json_objects)
def test_bulk_lines_are_json(obj: dict) -> None:
    doc = document("environment", "0" * 32, "1" * 32, obj)
    action, source, end = bulk_index_lines("0" * 32, doc).split("\n")
    assert end == ""
    assert json.loads(action) == {"index": {"_index": "chef", "_id": "0" * 32}}
    assert json.loads(source) == doc


@given(st.dictionaries(keys, json_objects, max_size=3), st.dictionaries(keys, json_objects, max_size=3))
def test_merge_keeps_every_key_and_the_later_scalar(a: dict, b: dict) -> None:
    merged = deep_merge(a, b)
    assert set(merged) == set(a) | set(b)
    for key, value in b.items():
        if not isinstance(value, dict) or not isinstance(a.get(key), dict):
            assert merged[key] == value


def test_merged_attributes_ignore_missing_levels() -> None:
    assert merged_attributes({}) == {}
    assert math.isclose(merged_attributes({"automatic": {"load": 0.5}})["load"], 0.5)
