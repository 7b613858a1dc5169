"""The API server against a real PostgreSQL, driven by signed clients (chefsessionlib and our own signer)."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import session
from .signer import sign

pytestmark = pytest.mark.integration


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def raw(fe, method: str, path: str, key, user: str = "pivotal", body: bytes = b"", **kw) -> requests.Response:
    """A request signed by our own test signer (not the server's code), with extra headers in kw."""
    sent_path = requests.Request(method, fe.url + path).prepare().path_url  # as requests normalises it
    headers = sign(key, user, method, sent_path, body, version=kw.pop("version", "1.3"),
                   api_version=kw.pop("api_version", "1"))
    headers.update(kw.pop("headers", {}))
    return requests.request(method, fe.url + path, data=body, headers=headers, timeout=30)


def private_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


@pytest.fixture(scope="module")
def org(frontend, pivotal):
    org_name = name("org")
    r = pivotal.post(frontend.url + "/organizations", json={"name": org_name, "full_name": "Test Org"})
    assert r.status_code == 201, r.text
    return {"name": org_name, "validator_key": r.json()["private_key"]}


def new_user(frontend, pivotal, **extra) -> tuple[str, str]:
    user = name("user")
    r = pivotal.post(frontend.url + "/users", json={"username": user, "display_name": user, "password": "secret12",
                                                    "email": f"{user}@example.com", "create_key": True, **extra})
    assert r.status_code == 201, r.text
    return user, r.json()["chef_key"]["private_key"]


def test_status_is_unsigned_and_checks_postgres(frontend):
    r = requests.get(frontend.url + "/_status", timeout=10)
    assert r.status_code == 200
    assert r.json()["status"] == "pong" and r.json()["upstreams"] == {"chef_sql": "pong"}


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.3"])
def test_every_signing_protocol(frontend, version):
    r = session(frontend.pivotal_key, version=version).get(frontend.url + "/users/pivotal")
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "pivotal"


def test_api_version_header_and_406(frontend):
    key = private_key(frontend.pivotal_key)
    r = raw(frontend, "GET", "/users", key, api_version="2")
    assert json.loads(r.headers["X-Ops-Server-API-Version"]) == {
        "min_version": "0", "max_version": "2", "request_version": "2", "response_version": "2"}
    r = raw(frontend, "GET", "/users", key, api_version="3")
    assert r.status_code == 406
    assert r.json()["error"] == "invalid-x-ops-server-api-version"


def test_user_lifecycle(frontend, pivotal):
    user, key = new_user(frontend, pivotal, first_name="Ann")
    me = session(key, user)
    r = me.get(frontend.url + f"/users/{user}")
    assert r.status_code == 200 and r.json()["first_name"] == "Ann"
    assert pivotal.post(frontend.url + "/authenticate_user",
                        json={"username": user, "password": "secret12"}).status_code == 200
    wrong = json.dumps({"username": user, "password": "wrong123"}).encode()
    assert raw(frontend, "POST", "/authenticate_user", private_key(frontend.pivotal_key), body=wrong,
               headers={"Content-Type": "application/json"}).status_code == 401  # chefsessionlib raises on 401
    renamed = user + "-x"
    r = me.put(frontend.url + f"/users/{user}", json={"username": renamed, "display_name": "A",
                                                       "email": f"{user}@example.com"})
    assert r.status_code == 201 and r.json()["uri"].endswith(f"/users/{renamed}")
    assert pivotal.get(frontend.url + f"/users/{user}").status_code == 404
    assert pivotal.delete(frontend.url + f"/users/{renamed}").status_code == 200
    assert pivotal.get(frontend.url + f"/users/{renamed}").status_code == 404


def test_duplicate_user_is_409(frontend, pivotal):
    user, _ = new_user(frontend, pivotal)
    r = pivotal.post(frontend.url + "/users", json={"username": user, "display_name": "x", "password": "secret12",
                                                    "email": f"other-{user}@example.com"})
    assert r.status_code == 409


def test_non_superuser_cannot_list_users(frontend, pivotal):
    user, key = new_user(frontend, pivotal)
    assert session(key, user).get(frontend.url + "/users").status_code == 403


def test_validator_registers_a_client_as_chef_client_does(frontend, org):
    """chef-client registers with the validator key at API v0, posting its own public key."""
    validator = session(org["validator_key"], f"{org['name']}-validator", version="1.1", api=0)
    node_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = node_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    client = name("node")
    r = validator.post(frontend.url + f"/organizations/{org['name']}/clients",
                       json={"name": client, "admin": False, "public_key": public})
    assert r.status_code == 201, r.text
    r = raw(frontend, "GET", f"/organizations/{org['name']}/clients/{client}", node_key, user=client,
            version="1.1", api_version="0")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == client and r.json()["public_key"] == public
    # a second registration is refused; the validator may not read clients
    assert validator.post(frontend.url + f"/organizations/{org['name']}/clients",
                          json={"name": client, "public_key": public}).status_code == 409
    assert validator.get(frontend.url + f"/organizations/{org['name']}/clients/{client}").status_code == 403


def test_membership_and_org_scope(frontend, pivotal, org):
    user, key = new_user(frontend, pivotal)
    me = session(key, user)
    url = frontend.url + f"/organizations/{org['name']}"
    assert me.get(url).status_code == 403
    assert pivotal.post(url + "/users", json={"username": user}).status_code == 201
    assert me.get(url).status_code == 200
    assert [u["user"]["username"] for u in me.get(url + "/users").json()].count(user) == 1
    assert pivotal.delete(url + f"/users/{user}").status_code == 200
    assert me.get(url).status_code == 403


def test_keys_expire_and_deletion_takes_effect_at_once(frontend, pivotal):
    user, _ = new_user(frontend, pivotal)
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = pivotal.post(frontend.url + f"/users/{user}/keys",
                     json={"name": "old", "create_key": True, "expiration_date": past})
    assert r.status_code == 201
    expired = private_key(r.json()["private_key"])
    assert raw(frontend, "GET", f"/users/{user}", expired, user=user).status_code == 401
    r = pivotal.post(frontend.url + f"/users/{user}/keys",
                     json={"name": "second", "create_key": True, "expiration_date": "infinity"})
    second = private_key(r.json()["private_key"])
    listing = {k["name"]: k["expired"] for k in pivotal.get(frontend.url + f"/users/{user}/keys").json()}
    assert listing == {"default": False, "old": True, "second": False}
    for _ in range(6):  # every worker has it cached now
        assert raw(frontend, "GET", f"/users/{user}", second, user=user).status_code == 200
    assert pivotal.delete(frontend.url + f"/users/{user}/keys/second").status_code == 200
    for _ in range(6):
        assert raw(frontend, "GET", f"/users/{user}", second, user=user).status_code == 401


def test_user_and_client_of_the_same_name(frontend, pivotal, org):
    user, user_key = new_user(frontend, pivotal)
    assert pivotal.post(frontend.url + f"/organizations/{org['name']}/users", json={"username": user}).status_code \
        == 201
    r = pivotal.post(frontend.url + f"/organizations/{org['name']}/clients", json={"name": user, "create_key": True})
    client_key = r.json()["chef_key"]["private_key"]
    for key in (user_key, client_key):
        r = session(key, user).get(frontend.url + f"/organizations/{org['name']}/clients/{user}")
        assert r.status_code == 200
    r = requests.get(frontend.url + f"/organizations/{org['name']}/principals/{user}",
                     headers={"X-Ops-Server-API-Version": "1"}, timeout=10)
    assert sorted(p["type"] for p in r.json()["principals"]) == ["client", "user"]


BAD_SIGNATURES = [
    ("wrong key", {}, 401),
    ("old timestamp", {"X-Ops-Timestamp": "2001-01-01T00:00:00Z"}, 401),
    ("no content hash", {"X-Ops-Content-Hash": ""}, 400),
    ("unknown protocol", {"X-Ops-Sign": "version=9.9"}, 400),
    ("unknown user", {"X-Ops-Userid": "nobody-here"}, 401),
]


@pytest.mark.parametrize("label,override,status", BAD_SIGNATURES, ids=[b[0] for b in BAD_SIGNATURES])
def test_bad_signatures(frontend, label, override, status):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if label == "wrong key" \
        else private_key(frontend.pivotal_key)
    r = raw(frontend, "GET", "/users", key, headers=override)
    assert r.status_code == status
    assert isinstance(r.json()["error"], list)


@pytest.mark.parametrize("method,path,body,headers,status", [
    ("POST", "/users", b"{not json", {}, 400),
    ("POST", "/users", b"[1, 2]", {}, 400),
    ("POST", "/users", b"", {}, 400),
    ("POST", "/users", b"{}" + b" " * 2_000_001, {}, 413),
    ("POST", "/users", b"{}", {"Content-Type": "text/plain"}, 415),
    ("POST", "/organizations", b'{"name": "../etc", "full_name": "x"}', {}, 400),
    ("POST", "/organizations", b'{"name": "\\u0000", "full_name": "x"}', {}, 400),
    ("POST", "/users", json.dumps({"username": "a" * 5000, "display_name": "x"}).encode(), {}, 400),
    ("GET", "/users/%00%ff..%2F", b"", {}, 404),
    ("GET", "/organizations/no-such-org/clients", b"", {}, 404),
    ("DELETE", "/license", b"", {}, 405),
])
def test_bad_input_gets_chef_errors_never_500(frontend, method, path, body, headers, status):
    key = private_key(frontend.pivotal_key)
    headers = {"Content-Type": "application/json", **headers}
    r = raw(frontend, method, path, key, body=body, headers=headers)
    assert r.status_code == status, r.text
    assert "error" in r.json()


def test_database_outage_answers_503_then_recovers(frontend, postgres):
    pivotal = session(frontend.pivotal_key)
    url = frontend.url + f"/users/{name('nobody')}"  # not cached: needs the database
    postgres.halt()
    try:
        assert requests.get(frontend.url + "/_status", timeout=30).status_code == 503
        r = pivotal.get(url)
        assert r.status_code == 503 and "error" in r.json()
        assert pivotal.post(frontend.url + "/users", json={"username": "x", "display_name": "x",
                                                           "email": "x@example.com", "password": "secret12"}
                            ).status_code == 503
    finally:
        postgres.run()
    healthy = 0  # until both workers answer: ten pongs in a row
    for _ in range(300):
        healthy = healthy + 1 if requests.get(frontend.url + "/_status", timeout=30).status_code == 200 else 0
        if healthy == 10:
            break
        time.sleep(0.1)
    # dead pooled connections were replaced when the workers saw the outage: no request pays for them
    statuses = [pivotal.get(frontend.url + "/users/pivotal").status_code for _ in range(20)]
    assert statuses == [200] * 20


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
FIELDS = st.sampled_from(["name", "username", "clientname", "display_name", "email", "password", "public_key",
                          "create_key", "private_key", "validator", "full_name", "expiration_date", "user", "actors",
                          "response", "first_name", "external_authentication_uid"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/users", "/organizations", "/organizations/{org}/clients", "/users/pivotal/keys",
                             "/organizations/{org}/users", "/organizations/{org}/association_requests",
                             "/authenticate_user"]),
       body=st.dictionaries(FIELDS, JSON_VALUES, max_size=6), api=st.sampled_from(["0", "1", "2"]))
def test_random_bodies_never_500(frontend, org, path, body, api):
    key = private_key(frontend.pivotal_key)
    r = raw(frontend, "POST", path.format(org=org["name"]), key, body=json.dumps(body).encode(), api_version=api,
            headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text


@pytest.mark.parametrize("body", [
    {"username": "nul", "display_name": "x", "email": "nul@example.com", "password": "secret12",
     "first_name": "a\u0000b"},
    {"name": "nul-org", "full_name": "a\u0000b"},
])
def test_strings_postgres_cannot_store_are_400(frontend, body):
    path = "/users" if "username" in body else "/organizations"
    r = raw(frontend, "POST", path, private_key(frontend.pivotal_key), body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
