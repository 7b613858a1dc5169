"""Table tests of the pure decisions: API versions, bodies, names, keys, users, clients, orgs."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server import api_version, keys, org_policy, validation
from chef_server.api import clients, groups, license, organizations, users
from chef_server.errors import ChefError


def error_of(fn, *args):
    with pytest.raises(ChefError) as err:
        fn(*args)
    return err.value.status, err.value.body


@pytest.mark.parametrize("raw,expected", [(None, 0), ("0", 0), ("1", 1), ("2", 2), (" 2 ", 2)])
def test_api_versions_accepted(raw, expected):
    assert api_version.parse(raw) == expected


@pytest.mark.parametrize("raw", ["3", "-1", "x", "", "1.0", "999999999999999999999"])
def test_api_versions_refused_with_406(raw):
    status, body = error_of(api_version.parse, raw)
    assert status == 406
    assert body["error"] == "invalid-x-ops-server-api-version"
    assert (body["min_version"], body["max_version"]) == (0, 2)


def test_response_header_shape():
    assert json.loads(api_version.response_header("1", 1)) == {
        "min_version": "0", "max_version": "2", "request_version": "1", "response_version": "1"}
    assert json.loads(api_version.response_header("x", None))["request_version"] == "-1"


@pytest.mark.parametrize("body,status,message", [
    (b"{bad", 400, ["invalid JSON"]), (b"[1]", 400, ["Incorrect JSON type for request body"]),
    (b'"s"', 400, ["Incorrect JSON type for request body"]), (b"", 400, ["invalid JSON"])])
def test_bodies(body, status, message):
    assert error_of(validation.parse_json_object, body) == (status, {"error": message})


def test_oversized_body_is_413():
    status, _ = error_of(validation.parse_json_object, b" " * (validation.MAX_BODY + 1))
    assert status == 413


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_cleanly(data):
    try:
        assert isinstance(validation.parse_json_object(data), dict)
    except ChefError as exc:
        assert exc.status in (400, 413)


@pytest.mark.parametrize("value,expected", [
    ("infinity", None), ("2030-01-02T03:04:05Z", datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))])
def test_expiration_dates(value, expected):
    assert keys.parse_expiration(value) == expected
    assert keys.format_expiration(expected) == value


@pytest.mark.parametrize("value", ["", "tomorrow", "2030-01-02T03:04:05", "2030-02-30T00:00:00Z", 5, None])
def test_bad_expiration_dates(value):
    status, body = error_of(keys.parse_expiration, value)
    assert status == 400 and body["error"][0].startswith("Field expiration_date is invalid.")


def test_generated_keys_load():
    public, private = keys.generate_key_pair()
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert keys.valid_public_key(public)
    assert not keys.valid_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    assert not keys.valid_public_key(42)


GOOD_USER = {"username": "alice", "display_name": "Alice", "email": "Alice@Example.com", "password": "secret1"}


def test_valid_user():
    user = users.validate_user(1, GOOD_USER, "create")
    assert user["username"] == "alice" and user["email"] == "alice@example.com"
    assert user["serialized_object"] == {"display_name": "Alice"}


@pytest.mark.parametrize("change,message", [
    ({"username": "Alice"}, "Field 'username' invalid"),
    ({"username": None}, "Field 'username' invalid"),
    ({"name": "a b"}, "Field 'name' invalid"),
    ({"display_name": 5}, "Field 'display_name' invalid"),
    ({"email": "nope"}, "email must be valid"),
    ({"password": "short"}, "Password must have at least 6 characters"),
    ({"private_key": True}, "Please use create_key: true instead of private_key: true"),
    ({"create_key": "yes"}, "Field 'create_key' invalid"),
    ({"public_key": "junk"}, "Public Key must be a valid key."),
])
def test_invalid_users(change, message):
    status, body = error_of(users.validate_user, 1, {**GOOD_USER, **change}, "create")
    assert status == 400 and body == {"error": [message]}


@pytest.mark.parametrize("field", ["display_name", "email", "password"])
def test_required_user_fields(field):
    data = {k: v for k, v in GOOD_USER.items() if k != field}
    assert error_of(users.validate_user, 1, data, "create") == (400, {"error": [f"Field '{field}' missing"]})


def test_external_users_need_no_email_or_password():
    data = {"username": "ext", "display_name": "E", "external_authentication_uid": "e1"}
    assert users.validate_user(1, data, "create")["external_authentication_uid"] == "e1"


def test_v1_update_refuses_key_fields():
    status, body = error_of(users.validate_user, 1, {**GOOD_USER, "public_key": "x"}, "update")
    assert status == 400 and "keys endpoint" in body["error"][0]


@pytest.mark.parametrize("data,url,expected", [
    ({"name": "n1"}, None, "n1"), ({"clientname": "n1"}, None, "n1"), ({"name": "a", "clientname": "a"}, None, "a"),
    ({}, "from-url", "from-url")])
def test_client_names(data, url, expected):
    assert clients.client_name_of(data, url) == expected


@pytest.mark.parametrize("data", [{}, {"name": "a", "clientname": "b"}, {"name": "bad name"}, {"name": "x/y"},
                                  {"name": 5}])
def test_bad_client_names(data):
    assert error_of(clients.client_name_of, data, None)[0] == 400


@pytest.mark.parametrize("data,ok", [
    ({"name": "acme", "full_name": "Acme"}, True), ({"name": "Acme", "full_name": "A"}, False),
    ({"name": "-acme", "full_name": "A"}, False), ({"name": "acme", "full_name": " lead"}, False),
    ({"name": "acme"}, False), ({"full_name": "A"}, False), ({"name": "a" * 256, "full_name": "A"}, False)])
def test_org_validation(data, ok):
    if ok:
        assert organizations.validate_org(data) == data
    else:
        assert error_of(organizations.validate_org, data)[0] == 400


def test_org_rename_refused():
    assert error_of(organizations.validate_org, {"name": "b", "full_name": "B"}, "a")[0] == 400


def test_default_org_policy():
    acls = org_policy.default_acls("pivotal")
    assert set(org_policy.CONTAINERS) == {n for k, n in acls if k == "container"}
    assert acls[("container", "clients")]["read"]["groups"] == ["admins", "users"]
    assert acls[("container", "nodes")]["create"]["groups"] == ["admins", "users", "clients"]
    assert "pivotal" in acls[("organization", "")]["grant"]["actors"]


def test_group_members_from_body():
    assert groups.requested_members({"actors": {"users": ["a"], "groups": ["g"]}}) == {
        "user": ["a"], "client": [], "group": ["g"]}
    assert error_of(groups.requested_members, {"actors": {"users": "a"}})[0] == 400


@pytest.mark.parametrize("count,exceeded", [(0, False), (1, False), (25, False), (26, True), (1000, True)])
def test_license_limit_follows_the_node_count(count, exceeded):
    body = license.license_body(count)
    assert (body["node_count"], body["limit_exceeded"], body["node_license"]) == (count, exceeded, 25)


@pytest.mark.parametrize(("host", "expected"), [
    ("chef.example.com", "chef.example.com"), ("chef.example.com:443", "chef.example.com"),
    ("127.0.0.30:80", "127.0.0.30"), ("127.0.0.21:8000", "127.0.0.21:8000"),
    ("[fd00::21]:443", "[fd00::21]"), ("[fd00::21]", "[fd00::21]"), ("[fd00::21]:8443", "[fd00::21]:8443"),
])
def test_urls_leave_out_the_default_ports_as_erchef(host: str, expected: str) -> None:
    from chef_server.host_header import without_default_port

    assert without_default_port(host) == expected
