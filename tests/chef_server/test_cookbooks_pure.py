"""Pure rules of the cookbooks area: signed URLs, cookbook documents, sandboxes, run lists, policies, ACLs."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server import acl, org_policy, presign
from chef_server import cookbook_version as cbv
from chef_server.api import depsolver, policies, sandboxes
from chef_server.api.cookbooks import dependency_spec, num_versions
from chef_server.errors import ChefError

NOW = 1_800_000_000.0
SECRET = "0123456789abcdef" * 4


def _split(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.netloc, parts.path, dict(parse_qsl(parts.query))


@given(path=st.from_regex(r"/bookshelf/organization-[0-9a-f]{8}/checksum-[0-9a-f]{32}", fullmatch=True),
       ttl=st.integers(min_value=1, max_value=86400), method=st.sampled_from(["GET", "PUT"]))
def test_presigned_urls_verify_only_as_issued(path, ttl, method):
    host, got_path, query = _split(presign.presign(SECRET, method, "https://chef.example:443", path, ttl, now=NOW))
    assert got_path == path
    assert presign.verify(SECRET, method, host, path, query, now=NOW + ttl)
    assert not presign.verify(SECRET, method, host, path, query, now=NOW + ttl + 1)  # expired
    assert not presign.verify(SECRET, "DELETE", host, path, query, now=NOW)
    assert not presign.verify("another key", method, host, path, query, now=NOW)
    assert not presign.verify(SECRET, method, "other.example", path, query, now=NOW)
    assert not presign.verify(SECRET, method, host, path + "0", query, now=NOW)
    assert not presign.verify(SECRET, method, host, path, {**query, "X-Amz-Expires": str(ttl + 1)}, now=NOW)
    assert not presign.verify(SECRET, method, host, path, {k: v for k, v in query.items() if k != "X-Amz-Date"})


def _doc(**changes) -> dict:
    doc = {"name": "cb-1.0.0", "cookbook_name": "cb", "json_class": "Chef::CookbookVersion",
           "chef_type": "cookbook_version", "metadata": {"version": "1.0.0"}}
    doc.update(changes)
    return doc


@pytest.mark.parametrize("doc, message", [
    ({**_doc(), "bogus": 1}, "Invalid key bogus in request body"),
    ({k: v for k, v in _doc().items() if k != "name"}, "Field 'name' missing"),
    (_doc(name="cb-2.0.0"), "Field 'name' invalid"),
    (_doc(json_class="Chef::Node"), "Field 'json_class' invalid"),
    (_doc(chef_type="node"), "Field 'chef_type' invalid"),
    (_doc(metadata=[]), "Field 'metadata' invalid"),
    (_doc(metadata={}), "Field 'metadata.version' missing"),
    (_doc(metadata={"version": "1.0.1"}), "Field 'metadata.version' invalid"),
    (_doc(metadata={"version": "1.0.0", "license": 1}), "Field 'metadata.license' invalid"),
    (_doc(metadata={"version": "1.0.0", "platforms": []}), "Field 'metadata.platforms' invalid"),
    (_doc(metadata={"version": "1.0.0", "dependencies": {"foo": {}}}),
     "Invalid value '{[]}' for metadata.dependencies"),
    (_doc(metadata={"version": "1.0.0", "dependencies": {"foo": ">>> 1.0"}}),
     "Invalid value '>>> 1.0' for metadata.dependencies"),
    (_doc(metadata={"version": "1.0.0", "dependencies": {"a b": "1.0"}}),
     "Invalid key 'a b' for metadata.dependencies"),
    (_doc(recipes={}), "Field 'recipes' invalid"),
    (_doc(recipes=[{"name": "x"}]), "Invalid element in array value of 'recipes'."),
])
def test_cookbook_validation_messages(doc, message):
    with pytest.raises(ChefError) as err:
        cbv.validate(doc, "cb", "1.0.0", all_files=False)
    assert err.value.status == 400 and err.value.body == {"error": [message]}


def test_cookbook_defaults_and_v2_keys():
    stored = cbv.validate({k: v for k, v in _doc().items() if k not in ("json_class", "chef_type")}, "cb", "1.0.0",
                          all_files=False)
    assert stored["json_class"] == "Chef::CookbookVersion" and stored["frozen?"] is False
    with pytest.raises(ChefError):
        cbv.validate(_doc(recipes=[]), "cb", "1.0.0", all_files=True)  # v2 uploads carry all_files only
    assert cbv.validate(_doc(all_files=[]), "cb", "1.0.0", all_files=True)["all_files"] == []


@pytest.mark.parametrize("name, version, message", [
    ("a@b", "1.0.0", "Invalid cookbook name 'a@b' using regex: 'Malformed cookbook name. Must only contain A-Z, "
                     "a-z, 0-9, _, . or -'."),
    ("cb", "1.0.0.0", "Invalid cookbook version '1.0.0.0'."),
    ("cb", "-1", "Invalid cookbook version '-1'."),
    ("cb", "9223372036854775808", "Invalid cookbook version '9223372036854775808'."),
])
def test_url_checks(name, version, message):
    with pytest.raises(ChefError) as err:
        cbv.check_url(name, version)
    assert err.value.body == {"error": [message]}


FILE = st.fixed_dictionaries({"name": st.from_regex(r"[a-z]{1,5}(/[a-z]{1,5})?\.rb", fullmatch=True),
                              "path": st.just("p"), "checksum": st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
                              "specificity": st.just("default")})


@given(st.fixed_dictionaries({segment: st.lists(FILE, max_size=3) for segment in cbv.SEGMENTS}))
def test_segments_and_all_files_convert_both_ways(segments):
    doc = {**_doc(), **segments}
    assert cbv.to_segments(cbv.to_all_files(doc)) == doc
    assert cbv.checksums(cbv.to_all_files(doc)) == cbv.checksums(doc)


def test_qualified_recipes_and_urls():
    doc = _doc(recipes=[{"name": "default.rb", "path": "recipes/default.rb", "checksum": "a" * 32,
                         "specificity": "default"},
                        {"name": "web.rb", "path": "recipes/web.rb", "checksum": "b" * 32, "specificity": "default"}])
    assert cbv.qualified_recipes("cb", doc) == ["cb", "cb::web"]
    assert cbv.qualified_recipes("cb", cbv.to_all_files(doc)) == ["cb", "cb::web"]
    shown = cbv.for_client(doc, True, True, lambda c: f"u/{c}")
    assert [f["url"] for f in shown["all_files"]] == ["u/" + "a" * 32, "u/" + "b" * 32]
    assert shown["frozen?"] is True and shown["metadata"]["dependencies"] == {}


@pytest.mark.parametrize("body, message", [
    ({}, "Field 'checksums' missing"), ({"checksums": {}}, "Bad checksums!"), ({"checksums": []}, "Bad checksums!"),
    ({"checksums": {"a" * 32: "x"}}, "Bad checksums!"), ({"checksums": {"z" * 32: None}}, "Bad checksums!"),
])
def test_sandbox_bodies(body, message):
    with pytest.raises(ChefError) as err:
        sandboxes.checksums_of(body)
    assert err.value.body == {"error": [message]}


def test_num_versions_and_universe_specs():
    assert num_versions({}, 1) == 1 and num_versions({"num_versions": "all"}, 1) is None
    assert num_versions({"num_versions": "0"}, None) == 0
    with pytest.raises(ChefError):
        num_versions({"num_versions": "-1"}, 1)
    assert dependency_spec("1.0") == "= 1.0" and dependency_spec("~> 2.1") == "~> 2.1"
    assert dependency_spec(">= 0.0.0") == ">= 0.0.0"


def test_depsolver_run_lists():
    assert depsolver.run_list_of({}) == []
    assert depsolver.run_list_of({"run_list": ["a", "b::c@1.0", "recipe[d::e]"]}) == ["a", "b::c@1.0", "d::e"]
    for bad in ("a", [1], ["a b"], ["recipe[x"]):
        with pytest.raises(ChefError):
            depsolver.run_list_of({"run_list": bad})


POLICY = {"revision_id": "r1", "name": "web", "run_list": ["recipe[a::b]"],
          "cookbook_locks": {"a": {"identifier": "f" * 40, "version": "1.2.3"}}}


@pytest.mark.parametrize("change, message", [
    ({"revision_id": None}, "Field 'revision_id' missing"), ({"revision_id": ""}, "Field 'revision_id' invalid"),
    ({"name": "x" * 256}, "Field 'name' invalid"), ({"run_list": None}, "Field 'run_list' missing"),
    ({"run_list": ["recipe[a]"]}, "Field 'run_list' is not a valid run list"),
    ({"cookbook_locks": []}, "Field 'cookbook_locks' invalid"),
    ({"cookbook_locks": {"a": {"version": "1.0"}}}, "Field 'identifier' missing"),
    ({"cookbook_locks": {"a": {"identifier": "x", "version": "1.0", "dotted_decimal_identifier": "q"}}},
     "Field 'dotted_decimal_identifier' is not a valid version"),
    ({"name": "other"}, "Field 'name' invalid : web does not match other"),
])
def test_policy_validation(change, message):
    doc = {k: v for k, v in {**POLICY, **change}.items() if v is not None}
    with pytest.raises(ChefError) as err:
        policies.validate(doc, "web")
    assert err.value.body == {"error": [message]}


def test_default_container_rules():
    acls = org_policy.default_acls("creator")

    def may(group: str, container: str, perm: str) -> bool:
        aces = {p: part["groups"] for p, part in acls[("container", container)].items()}
        return acl.allowed(aces, [group], perm)
    assert may("users", "cookbooks", "delete") and may("users", "sandboxes", "create")
    assert may("clients", "cookbooks", "read") and not may("clients", "cookbooks", "create")
    assert not may("clients", "sandboxes", "create")


def test_depsolver_answers_503_when_no_solver_is_free(monkeypatch):
    async def run():
        monkeypatch.setattr(depsolver, "_solvers", asyncio.Semaphore(1))
        monkeypatch.setattr(depsolver, "QUEUE_WAIT", 0.05)
        await depsolver._solvers.acquire()  # the only solver is busy
        with pytest.raises(ChefError) as err:
            await depsolver._solve({"a": {"1.0.0": {}}}, {}, ["a"])
        assert err.value.status == 503
        assert err.value.body == {"error": ["Dependency solver overloaded. Try again later."]}
        depsolver._solvers.release()
        assert await depsolver._solve({"a": {"1.0.0": {}}}, {}, ["a"]) == {"a": "1.0.0"}

    asyncio.run(run())
