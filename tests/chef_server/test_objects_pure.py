"""Pure rules for nodes, roles, environments and data bags (chef_objects): erchef's validation and messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server import chef_objects as co
from chef_server.errors import ChefError


def message(fn, *args) -> str:
    with pytest.raises(ChefError) as exc:
        fn(*args)
    assert exc.value.status == 400
    return exc.value.body["error"][0]


@pytest.mark.parametrize("body, expected", [
    ({}, "Field 'name' missing"),
    ({"name": "a b"}, "Field 'name' invalid"),
    ({"name": 3}, "Field 'name' invalid"),
    ({"name": "n", "color": "red"}, "Invalid key color in request body"),
    ({"name": "n", "json_class": "Chef::Role"}, "Field 'json_class' invalid"),
    ({"name": "n", "chef_type": "role"}, "Field 'chef_type' invalid"),
    ({"name": "n", "normal": []}, "Field 'normal' is not a hash"),
    ({"name": "n", "automatic": "x"}, "Field 'automatic' is not a hash"),
    ({"name": "n", "run_list": "recipe[a]"}, "Field 'run_list' is not a valid run list"),
    ({"name": "n", "run_list": ["recipe[a b]"]}, "Field 'run_list' is not a valid run list"),
    ({"name": "n", "run_list": [1]}, "Field 'run_list' is not a valid run list"),
    ({"name": "n", "chef_environment": "a b"}, "Field 'chef_environment' invalid"),
    ({"name": "n", "policy_name": ""}, "Field 'policy_name' invalid"),
])
def test_node_validation(body, expected):
    assert message(co.node_from_body, body) == expected


def test_node_defaults_and_run_list_normalisation():
    node = co.node_from_body({"name": "web1", "run_list": ["apache2", "recipe[apache2]", "role[web]", "a::b@1.0"]})
    assert node["run_list"] == ["recipe[apache2]", "role[web]", "recipe[a::b@1.0]"]
    assert node["chef_environment"] == "_default" and node["json_class"] == "Chef::Node"
    assert node["normal"] == node["default"] == node["override"] == node["automatic"] == {}


def test_put_names_must_agree():
    assert co.node_from_body({}, "web1")["name"] == "web1"
    assert message(co.node_from_body, {"name": "other"}, "web1") == "Node name mismatch."
    assert message(co.role_from_body, {"name": "other"}, "web") == "Role name mismatch."
    assert message(co.data_bag_item_from_body, {"id": "x"}, "y") == "DataBagItem name mismatch."


@pytest.mark.parametrize("body, expected", [
    ({"name": "r", "env_run_lists": []}, "Field 'env_run_lists' contains invalid run lists"),
    ({"name": "r", "env_run_lists": {"a b": []}}, "Invalid key 'a b' for env_run_lists"),
    ({"name": "r", "env_run_lists": {"prod": ["bad item!"]}}, "Field 'env_run_lists' contains invalid run lists"),
    ({"name": "r", "default_attributes": 1}, "Field 'default_attributes' is not a hash"),
    ({"name": "r", "description": "d", "x": 1}, "Invalid key x in request body"),
])
def test_role_validation(body, expected):
    assert message(co.role_from_body, body) == expected


def test_role_environments_and_run_lists():
    role = co.role_from_body({"name": "web", "run_list": ["a"], "env_run_lists": {"prod": ["b", "b"]}})
    assert role["env_run_lists"] == {"prod": ["recipe[b]"]}
    assert co.role_environments(role) == ["_default", "prod"]
    assert co.role_run_list_for(role, "_default") == ["recipe[a]"]
    assert co.role_run_list_for(role, "prod") == ["recipe[b]"]
    assert co.role_run_list_for(role, "dev") is None


@pytest.mark.parametrize("versions, expected", [
    ({"apache": "= 1.0"}, None),
    ({"apache": ">= 1.0.0"}, None),
    ({"apache": "~> 2.1"}, None),
    ({"a b": "1.0"}, "Invalid key 'a b' for cookbook_versions"),
    ({"apache": None}, "Invalid value 'null' for cookbook_versions"),
    ({"apache": []}, "Invalid value '[huh]' for cookbook_versions"),
    ({"apache": [">= 1.0", ">= 2.0"]}, "Invalid value '[<<\">= 1.0\">>,<<\">= 2.0\">>]' for cookbook_versions"),
    ({"apache": "> = 1.0"}, "Invalid value '> = 1.0' for cookbook_versions"),
])
def test_environment_cookbook_versions(versions, expected):
    body = {"name": "prod", "cookbook_versions": versions}
    if expected is None:
        assert co.environment_from_body(body)["cookbook_versions"] == versions
    else:
        assert message(co.environment_from_body, body) == expected


def test_environment_defaults_and_checks():
    env = co.environment_from_body({"name": "prod"})
    assert env == {"name": "prod", "description": "", "json_class": "Chef::Environment", "chef_type": "environment",
                   "default_attributes": {}, "override_attributes": {}, "cookbook_versions": {}}
    assert message(co.environment_from_body, {"name": "prod", "description": 1}) == "Field 'description' invalid"
    assert message(co.environment_from_body, {"name": "prod", "x": 1}) == "Invalid key x in request body"
    assert message(co.environment_from_body, {"name": "a:b"}) == "Field 'name' invalid"


def test_data_bag_items_are_opaque_but_for_their_id():
    encrypted = {"id": "db", "password": {"encrypted_data": "xx", "iv": "yy", "version": 3, "cipher": "aes-256-gcm"}}
    assert co.data_bag_item_from_body(encrypted) == encrypted
    wrapped = {"json_class": "Chef::DataBagItem", "raw_data": {"id": "x", "v": 1}, "data_bag": "b"}
    assert co.data_bag_item_from_body(wrapped) == {"id": "x", "v": 1}
    assert message(co.data_bag_item_from_body, {"v": 1}) == "Field 'id' missing"
    assert message(co.data_bag_item_from_body, {"id": "a/b"}) == "Field 'id' invalid"
    assert message(co.data_bag_from_body, {"name": "a b"}) == "Field 'name' invalid"
    assert co.wrapped_item("b", {"id": "x"})["name"] == "data_bag_item_b_x"


_item = st.one_of(st.from_regex(r"\A[a-z]{1,3}(::[a-z]{1,2})?\Z"), st.from_regex(r"\Arole\[[a-z]{1,3}\]\Z"),
                  st.from_regex(r"\Arecipe\[[a-z]{1,3}\]\Z"))


@given(st.lists(_item, max_size=12))
def test_run_list_normalisation_is_idempotent_and_keeps_first_occurrences(run_list):
    once = co.normalize_run_list(run_list)
    assert co.normalize_run_list(once) == once
    assert len(once) == len(set(once))
    assert all(item.startswith(("recipe[", "role[")) for item in once)
    assert co.valid_run_list(once)


def test_outbox_rows_are_cut_around_org_removals():
    from chef_server.search_index import segments
    rows = [{"kind": k, "n": i} for i, k in enumerate(["nodes", "roles", "orgs", "nodes", "clients", "orgs", "orgs"])]
    assert [[r["n"] for r in seg] for seg in segments(rows)] == [[0, 1], [2], [3, 4], [5], [6]]
