"""The pure authorization decisions and ACL bodies (acl.py): table and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server import acl, org_policy
from chef_server.errors import ChefError

ACES = {"read": ["g-users", "a-alice"], "update": ["g-admins"], "grant": ["g-admins"]}


@pytest.mark.parametrize("subject, perm, effective, container, expected", [
    (acl.Subject(), "read", ["a-bob", "g-users"], None, True),        # through a group
    (acl.Subject(), "read", ["a-alice"], None, True),                  # named as an actor
    (acl.Subject(), "update", ["a-bob", "g-users"], None, False),
    (acl.Subject(), "grant", ["a-carol", "g-admins"], None, True),
    (acl.Subject(), "delete", ["a-carol", "g-admins"], None, False),  # nobody holds it
    (acl.Subject(), "read", [], None, False),
    (acl.Subject(superuser=True), "delete", [], None, True),          # the superuser passes everything
    (acl.Subject(validator=True), "read", ["g-users"], None, False),  # a validator reads nothing
    (acl.Subject(validator=True), "create", [], "clients", True),     # ... and only creates clients
    (acl.Subject(validator=True), "create", [], "nodes", False),
])
def test_decide(subject, perm, effective, container, expected):
    assert acl.decide(subject, perm, ACES, effective, container) is expected


@given(st.dictionaries(st.sampled_from(acl.PERMS), st.lists(st.text(max_size=3), max_size=4)),
       st.lists(st.text(max_size=3), max_size=4), st.sampled_from(acl.PERMS))
def test_allowed_iff_an_effective_id_holds_the_permission(aces, effective, perm):
    assert acl.allowed(aces, effective, perm) == any(e in aces.get(perm, []) for e in effective)


def test_denied_is_erchefs_403():
    err = acl.denied("grant")
    assert err.status == 403 and err.body == {"error": ["missing grant permission"]}


def test_acl_body_plain_and_granular():
    named = {p: {"users": ["pivotal"], "clients": ["web1"], "groups": ["admins"]} for p in acl.PERMS}
    assert acl.acl_body(named, False)["read"] == {"actors": ["web1", "pivotal"], "groups": ["admins"]}
    assert acl.acl_body(named, True)["grant"] == {"actors": [], "users": ["pivotal"], "clients": ["web1"],
                                                  "groups": ["admins"]}


@pytest.mark.parametrize("body, message", [
    ({}, "Field 'read' missing"),
    ({"read": {"groups": []}}, "Field 'read.actors' missing"),
    ({"read": {"actors": []}}, "Field 'read.groups' missing"),
    ({"read": {"actors": "x", "groups": []}}, "Field 'actors' is not a valid array of strings"),
    ({"read": {"actors": [], "groups": [], "users": []}}, "Field 'users' requires 'clients' to be present"),
    ({"read": {"actors": ["a"], "groups": [], "users": [], "clients": []}},
     "The 'actors' field must be empty when 'users' and 'clients' are given"),
])
def test_parse_put_refuses(body, message):
    with pytest.raises(ChefError) as err:
        acl.parse_put("read", body)
    assert err.value.status == 400 and err.value.body == {"error": [message]}


def test_parse_put_and_split_actors():
    ace = acl.parse_put("update", {"update": {"actors": ["alice", "web1"], "groups": ["admins"]}})
    assert acl.split_actors(ace.actors, {"alice"}, {"web1"}) == (["alice"], ["web1"])
    with pytest.raises(ChefError) as err:
        acl.split_actors(["both"], {"both"}, {"both"})
    assert err.value.status == 422
    with pytest.raises(ChefError) as err:
        acl.split_actors(["bogus"], set(), set())
    assert err.value.status == 400


def test_default_org_acls_follow_erchef():
    acls = org_policy.default_acls("creator-id")
    nodes = acls[("container", "nodes")]
    assert set(nodes["create"]["groups"]) == {"admins", "users", "clients"}
    assert set(nodes["update"]["groups"]) == {"admins", "users"}
    assert acls[("organization", "")]["read"]["groups"] == ["admins", "users"]
    assert all(acls[obj]["grant"]["actors"] == ["creator-id"] for obj in acls if obj[1] != "public_key_read_access")


@pytest.mark.parametrize("subject, perm, current, new, refused", [
    (acl.Subject(), "grant", ["admins", "users"], ["users"], True),
    (acl.Subject(), "grant", ["admins"], ["admins"], False),
    (acl.Subject(), "grant", ["users"], [], False),               # never had it: nothing to protect
    (acl.Subject(), "read", ["admins"], [], False),               # only grant is protected
    (acl.Subject(superuser=True), "grant", ["admins"], [], False),
])
def test_admins_stay_in_grant_aces(subject, perm, current, new, refused):
    if refused:
        with pytest.raises(ChefError) as err:
            acl.check_constraints(subject, perm, current, new)
        assert err.value.status == 403
    else:
        acl.check_constraints(subject, perm, current, new)
