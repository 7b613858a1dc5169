"""Nodes, roles, environments and data bags through the real API server and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_api import JSON_VALUES, name, new_user, session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def org(frontend, pivotal):
    org_name = name("org")
    r = pivotal.post(frontend.url + "/organizations", json={"name": org_name, "full_name": "Objects"})
    assert r.status_code == 201, r.text
    return {"name": org_name, "url": f"{frontend.url}/organizations/{org_name}",
            "validator": session(r.json()["private_key"], f"{org_name}-validator", version="1.1", api=0)}


@pytest.fixture(scope="module")
def member(frontend, pivotal, org):
    """A normal (non-admin) user of the org."""
    user, key = new_user(frontend, pivotal)
    r = pivotal.post(org["url"] + "/association_requests", json={"user": user})
    assert r.status_code == 201, r.text
    me = session(key, user)
    invite = me.get(f"{frontend.url}/users/{user}/association_requests").json()[0]["id"]
    assert me.put(f"{frontend.url}/users/{user}/association_requests/{invite}",
                  json={"response": "accept"}).status_code == 200
    return me


def new_client(org) -> tuple[str, object]:
    client = name("client")
    r = org["validator"].post(org["url"] + "/clients", json={"name": client})
    assert r.status_code == 201, r.text
    return client, session(r.json()["private_key"], client, version="1.1", api=0)


def test_node_lifecycle(pivotal, org):
    url = org["url"] + "/nodes"
    node = name("node")
    r = pivotal.post(url, json={"name": node, "run_list": ["apache2", "role[web]", "apache2"]})
    assert (r.status_code, r.json()) == (201, {"uri": f"{url}/{node}"})
    assert pivotal.post(url, json={"name": node}).json() == {"error": ["Node already exists"]}
    stored = pivotal.get(f"{url}/{node}").json()
    assert stored["run_list"] == ["recipe[apache2]", "role[web]"] and stored["chef_environment"] == "_default"
    assert pivotal.head(f"{url}/{node}").status_code == 200
    assert node in pivotal.get(url).json()
    r = pivotal.put(f"{url}/{node}", json={**stored, "normal": {"tags": ["a"]}})
    assert r.status_code == 200 and r.json()["normal"] == {"tags": ["a"]}
    r = pivotal.put(f"{url}/{node}", json={**stored, "name": "other"})
    assert (r.status_code, r.json()) == (400, {"error": ["Node name mismatch."]})
    assert pivotal.delete(f"{url}/{node}").json()["normal"] == {"tags": ["a"]}
    r = pivotal.get(f"{url}/{node}")
    assert (r.status_code, r.json()) == (404, {"error": [f"node '{node}' not found"]})


def test_license_counts_the_nodes(frontend, pivotal, org):
    before = pivotal.get(frontend.url + "/license").json()["node_count"]
    node = name("node")
    assert pivotal.post(org["url"] + "/nodes", json={"name": node}).status_code == 201
    assert pivotal.get(frontend.url + "/license").json()["node_count"] == before + 1
    assert pivotal.delete(f"{org['url']}/nodes/{node}").status_code == 200
    assert pivotal.get(frontend.url + "/license").json()["node_count"] == before


def test_node_identifiers_unsigned(frontend, pivotal, org):
    node = name("node")
    assert pivotal.post(org["url"] + "/nodes", json={"name": node}).status_code == 201
    r = requests.get(f"{org['url']}/nodes/{node}/_identifiers", timeout=30)
    assert r.status_code == 200 and sorted(r.json()) == ["authz_id", "id", "org_id"], r.text
    assert all(re.fullmatch("[0-9a-f]{32}", value) for value in r.json().values())
    assert r.json() == pivotal.get(f"{org['url']}/nodes/{node}/_identifiers").json()
    r = requests.get(f"{org['url']}/nodes/nonexistent/_identifiers", timeout=30)
    assert (r.status_code, r.json()) == (404, {"error": ["No such 'nodes': 'nonexistent'."]})
    r = requests.get(f"{org['url']}/search/bad_object/_identifiers", timeout=30)
    assert (r.status_code, r.json()) == (404, {"error": ["Unsupported object type: 'search'."]})
    r = requests.get(f"{frontend.url}/organizations/nowhere/nodes/{node}/_identifiers", timeout=30)
    assert (r.status_code, r.json()) == (404, {"error": ["organization 'nowhere' does not exist."]})
    assert requests.put(f"{org['url']}/nodes/{node}/_identifiers", timeout=30).status_code == 405


@pytest.mark.parametrize("body, status, error", [
    ({"name": "x y"}, 400, "Field 'name' invalid"),
    ({"name": "n", "run_list": "recipe[a]"}, 400, "Field 'run_list' is not a valid run list"),
    ({"name": "n", "normal": []}, 400, "Field 'normal' is not a hash"),
    ({"name": "n", "bogus": 1}, 400, "Invalid key bogus in request body"),
])
def test_bad_nodes_get_erchefs_errors(pivotal, org, body, status, error):
    r = pivotal.post(org["url"] + "/nodes", json=body)
    assert (r.status_code, r.json()) == (status, {"error": [error]})


def test_a_client_updates_its_own_node_only(pivotal, org):
    mine, me = new_client(org)
    _other, someone = new_client(org)
    url = org["url"] + "/nodes"
    assert me.get(f"{url}/{mine}").status_code == 404  # chef-client's first run: GET, then POST
    assert me.post(url, json={"name": mine}).status_code == 201
    assert me.put(f"{url}/{mine}", json={"name": mine, "automatic": {"os": "linux"}}).status_code == 200
    assert someone.get(f"{url}/{mine}").status_code == 200  # clients read every node
    assert someone.put(f"{url}/{mine}", json={"name": mine}).status_code == 403
    assert org["validator"].get(url).status_code == 403  # validators only create clients


def test_roles_and_their_environment_run_lists(pivotal, org):
    url = org["url"]
    role = name("role")
    env = name("env")
    assert pivotal.post(url + "/environments", json={"name": env}).status_code == 201
    r = pivotal.post(url + "/roles", json={"name": role, "run_list": ["base"], "env_run_lists": {env: ["web"]}})
    assert r.status_code == 201, r.text
    assert pivotal.get(f"{url}/roles/{role}/environments").json() == sorted(["_default", env])
    assert pivotal.get(f"{url}/roles/{role}/environments/{env}").json() == {"run_list": ["recipe[web]"]}
    assert pivotal.get(f"{url}/environments/_default/roles/{role}").json() == {"run_list": ["recipe[base]"]}
    r = pivotal.get(f"{url}/roles/{role}/environments/nowhere")
    assert (r.status_code, r.json()) == (404, {"error": ["Cannot load environment nowhere"]})
    r = pivotal.put(f"{url}/roles/{role}", json={"name": role, "description": "web servers"})
    assert r.status_code == 200 and r.json()["run_list"] == []
    assert pivotal.delete(f"{url}/roles/{role}").status_code == 200
    assert pivotal.get(f"{url}/roles/{role}").json() == {"error": [f"Cannot load role {role}"]}


def test_environments_default_rename_and_nodes(pivotal, org):
    url = org["url"] + "/environments"
    default = pivotal.get(url + "/_default").json()
    assert default["name"] == "_default" and default["cookbook_versions"] == {}
    r = pivotal.put(url + "/_default", json={"name": "_default", "description": "mine"})
    assert (r.status_code, r.json()) == (405, {"error": ["The '_default' environment cannot be modified."]})
    assert pivotal.delete(url + "/_default").status_code == 405
    env, renamed = name("env"), name("env")
    assert pivotal.post(url, json={"name": env, "cookbook_versions": {"apache2": "~> 1.0"}}).status_code == 201
    node = name("node")
    assert pivotal.post(org["url"] + "/nodes", json={"name": node, "chef_environment": env}).status_code == 201
    assert list(pivotal.get(f"{url}/{env}/nodes").json()) == [node]
    r = pivotal.put(f"{url}/{env}", json={"name": renamed, "cookbook_versions": {"apache2": "~> 1.0"}})
    assert r.status_code == 201 and r.headers["Location"] == f"{url}/{renamed}"
    assert pivotal.get(f"{url}/{env}").status_code == 404
    assert pivotal.get(f"{url}/{renamed}").json()["cookbook_versions"] == {"apache2": "~> 1.0"}
    r = pivotal.post(url, json={"name": "bad", "cookbook_versions": {"apache2": "> = 1"}})
    assert (r.status_code, r.json()) == (400, {"error": ["Invalid value '> = 1' for cookbook_versions"]})
    r = pivotal.get(f"{url}/missing/nodes")
    assert (r.status_code, r.json()) == (404, {"error": ["Cannot load environment 'missing'"]})


def test_data_bags_and_opaque_items(pivotal, member, org):
    url = org["url"] + "/data"
    bag = name("bag")
    r = member.post(url + f"/{bag}", json={"id": "x"})
    assert r.status_code == 404 and "Please create this data bag" in r.json()["error"][0]
    assert member.post(url, json={"name": bag}).status_code == 201
    assert member.post(url, json={"name": bag}).json() == {"error": ["Data bag already exists"]}
    secret = {"id": "db", "password": {"encrypted_data": "c2VjcmV0", "iv": "aXY=", "version": 3,
                                       "cipher": "aes-256-gcm", "auth_tag": "dGFn"}}
    r = member.post(f"{url}/{bag}", json=secret)
    assert (r.status_code, r.json()) == (201, {**secret, "chef_type": "data_bag_item", "data_bag": bag})
    assert member.get(f"{url}/{bag}/db").json() == secret
    assert member.get(f"{url}/{bag}").json() == {"db": f"{url}/{bag}/db"}
    r = member.put(f"{url}/{bag}/db", json={"id": "other"})
    assert (r.status_code, r.json()) == (400, {"error": ["DataBagItem name mismatch."]})
    assert member.put(f"{url}/{bag}/db", json={"v": 2}).json() == {"id": "db", "v": 2, "chef_type": "data_bag_item",
                                                                    "data_bag": bag}
    assert member.delete(f"{url}/{bag}/db").json()["raw_data"] == {"id": "db", "v": 2}
    r = member.get(f"{url}/{bag}/db")
    assert r.json() == {"error": [f"Cannot load data bag item db for data bag {bag}"]}
    assert member.delete(f"{url}/{bag}").json() == {"name": bag, "json_class": "Chef::DataBag",
                                                    "chef_type": "data_bag"}
    r = member.put(f"{url}/{bag}", json={})
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST, DELETE"


def test_json_refused_by_accept_is_406(pivotal, org):
    r = pivotal.get(org["url"] + "/environments", headers={"Accept": "application/xml"})
    assert r.status_code == 406


@pytest.fixture(scope="module")
def fixed_objects(pivotal, org) -> str:
    """An org URL with a node, role, environment, bag and item named `fixed`, for PUTs to land on."""
    for path, payload in (("/nodes", {"name": "fixed"}), ("/roles", {"name": "fixed"}),
                          ("/environments", {"name": "fixed"}), ("/data", {"name": "fixed"}),
                          ("/data/fixed", {"id": "fixed"})):
        assert pivotal.post(org["url"] + path, json=payload).status_code == 201
    return org["url"]


OBJECT_FIELDS = st.sampled_from(["name", "id", "json_class", "chef_type", "run_list", "env_run_lists", "normal",
                                 "default", "override", "automatic", "chef_environment", "policy_name",
                                 "default_attributes", "override_attributes", "cookbook_versions", "description",
                                 "raw_data"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=st.sampled_from([("POST", "/nodes"), ("PUT", "/nodes/fixed"), ("POST", "/roles"),
                             ("PUT", "/roles/fixed"), ("POST", "/environments"), ("PUT", "/environments/fixed"),
                             ("POST", "/data"), ("POST", "/data/fixed"), ("PUT", "/data/fixed/fixed")]),
       body=st.dictionaries(OBJECT_FIELDS, JSON_VALUES, max_size=6))
def test_random_object_bodies_never_500(pivotal, fixed_objects, call, body):
    method, path = call
    r = pivotal.request(method, fixed_objects + path, data=json.dumps(body),  # Infinity too: refused, not a 500
                        headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
