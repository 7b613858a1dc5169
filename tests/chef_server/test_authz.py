"""Authorization through the real API server and PostgreSQL: per-object ACLs, groups, containers, the upgrade."""

from __future__ import annotations

import shutil
import tempfile

import psycopg
import pytest
from chefsessionlib.chefsessionlibexceptions import InvalidAuthentication

from chef_server.storage.migrate import migrate
from chef_server.storage.schema import MIGRATIONS

from .conftest import API_PORT, session, start_frontend, stop_frontend
from .test_api import name, new_user

pytestmark = pytest.mark.integration


def new_org(frontend, pivotal) -> dict:
    org_name = name("org")
    r = pivotal.post(frontend.url + "/organizations", json={"name": org_name, "full_name": "Authz"})
    assert r.status_code == 201, r.text
    return {"name": org_name, "url": f"{frontend.url}/organizations/{org_name}",
            "validator": session(r.json()["private_key"], f"{org_name}-validator", version="1.1", api=0)}


def join(frontend, pivotal, org: dict, admin: bool = False) -> tuple[str, object]:
    """A new user, associated with the org (in its users group; admins too when `admin`)."""
    user, key = new_user(frontend, pivotal)
    assert pivotal.post(org["url"] + "/users", json={"username": user}).status_code == 201
    if admin:
        members = pivotal.get(org["url"] + "/groups/admins").json()
        r = pivotal.put(org["url"] + "/groups/admins",
                        json={"actors": {"users": members["users"] + [user], "clients": members["clients"],
                                         "groups": members["groups"]}})
        assert r.status_code == 200, r.text
    return user, session(key, user)


def new_client(org: dict) -> tuple[str, object]:
    client = name("client")
    r = org["validator"].post(org["url"] + "/clients", json={"name": client})
    assert r.status_code == 201, r.text
    return client, session(r.json()["private_key"], client, version="1.1", api=0)


def get_status(client, url: str) -> int:
    """A GET's status (chefsessionlib raises on a 401)."""
    try:
        return client.get(url).status_code
    except InvalidAuthentication:
        return 401


@pytest.fixture(scope="module")
def two_orgs(frontend, pivotal):
    return new_org(frontend, pivotal), new_org(frontend, pivotal)


def test_a_client_of_one_org_reads_nothing_of_another(frontend, pivotal, two_orgs):
    a, b = two_orgs
    assert pivotal.post(b["url"] + "/nodes", json={"name": "secret"}).status_code == 201
    assert pivotal.post(b["url"] + "/data", json={"name": "vault"}).status_code == 201
    _, me = new_client(a)
    assert me.get(a["url"] + "/nodes").status_code == 200
    for path in ("/nodes", "/nodes/secret", "/data/vault", "/roles", "/clients", "/groups", "/containers",
                 "/nodes/secret/_acl", "/cookbooks", "/search/node"):
        assert get_status(me, b["url"] + path) == 401, path  # no client of that name in B
    # a user of org A (an admin even) is no member of B: 403 everywhere
    _, admin = join(frontend, pivotal, a, admin=True)
    for path in ("/nodes", "/nodes/secret", "/groups/admins", "/nodes/secret/_acl"):
        assert admin.get(b["url"] + path).status_code == 403, path


def test_object_acls_follow_the_container_and_the_creator(frontend, pivotal, two_orgs):
    org, _ = two_orgs
    user, me = join(frontend, pivotal, org, admin=True)
    assert me.post(org["url"] + "/nodes", json={"name": "made-by-admin"}).status_code == 201
    body = me.get(org["url"] + "/nodes/made-by-admin/_acl").json()
    assert set(body["read"]["actors"]) == {"pivotal", user}
    assert set(body["create"]["groups"]) == {"admins", "users", "clients"}
    assert set(body["update"]["groups"]) == {"admins", "users"}
    assert body["grant"]["groups"] == ["admins"]
    granular = me.get(org["url"] + "/nodes/made-by-admin/_acl?detail=granular").json()
    assert granular["read"]["actors"] == [] and set(granular["read"]["users"]) == {"pivotal", user}
    # a client changes the node it created, not another
    _, client = new_client(org)
    assert client.post(org["url"] + "/nodes", json={"name": "mine"}).status_code == 201
    assert client.put(org["url"] + "/nodes/mine", json={"name": "mine"}).status_code == 200
    assert client.put(org["url"] + "/nodes/made-by-admin", json={"name": "made-by-admin"}).status_code == 403


def test_a_non_admin_user_cannot_change_acls(frontend, pivotal, two_orgs):
    org, _ = two_orgs
    assert pivotal.post(org["url"] + "/roles", json={"name": "web"}).status_code == 201
    user, me = join(frontend, pivotal, org)
    ace = {"read": {"actors": [user], "groups": []}}
    for path in ("/roles/web/_acl/read", "/containers/nodes/_acl/read", "/groups/users/_acl/read",
                 "/organizations/_acl/read"):
        r = me.put(org["url"] + path, json=ace)
        assert r.status_code == 403, (path, r.text)
    assert me.get(org["url"] + "/roles/web/_acl").status_code == 403
    assert "admins" in pivotal.get(org["url"] + "/roles/web/_acl").json()["read"]["groups"]
    # granting the user `grant` is what lets it change the ACL
    r = pivotal.put(org["url"] + "/roles/web/_acl/grant", json={"grant": {"actors": [user], "groups": ["admins"]}})
    assert r.status_code == 200, r.text
    assert me.put(org["url"] + "/roles/web/_acl/read", json={"read": {"actors": [], "groups": ["admins"]}}) \
        .status_code == 200
    assert me.get(org["url"] + "/roles/web").status_code == 403  # users no longer read it
    assert pivotal.put(org["url"] + "/roles/web/_acl/read",
                       json={"read": {"actors": ["bogus"], "groups": []}}).status_code == 400
    assert pivotal.put(org["url"] + "/roles/web/_acl/read",
                       json={"read": {"actors": [], "groups": ["bogus"]}}).status_code == 400


def test_groups_create_nest_rename_delete(frontend, pivotal, two_orgs):
    org, _ = two_orgs
    user, me = join(frontend, pivotal, org)
    assert pivotal.post(org["url"] + "/data", json={"name": "secrets"}).status_code == 201
    acl_url = org["url"] + "/data/secrets/_acl/read"
    assert pivotal.put(acl_url, json={"read": {"actors": [], "groups": ["admins"]}}).status_code == 200
    assert me.get(org["url"] + "/data/secrets").status_code == 403
    # inner holds the user, outer holds inner; the bag's read goes to outer
    assert pivotal.post(org["url"] + "/groups", json={"groupname": "inner"}).status_code == 201
    assert pivotal.post(org["url"] + "/groups", json={"id": "outer"}).status_code == 201
    assert pivotal.post(org["url"] + "/groups", json={"id": "outer"}).status_code == 409
    assert pivotal.post(org["url"] + "/groups", json={"id": "Bad Name"}).status_code == 400
    assert pivotal.put(org["url"] + "/groups/inner",
                       json={"actors": {"users": [user], "clients": [], "groups": []}}).status_code == 200
    assert pivotal.put(org["url"] + "/groups/outer",
                       json={"actors": {"users": [], "clients": [], "groups": ["inner"]}}).status_code == 200
    assert pivotal.put(acl_url, json={"read": {"actors": [], "groups": ["admins", "outer"]}}).status_code == 200
    assert me.get(org["url"] + "/data/secrets").status_code == 200
    r = pivotal.put(org["url"] + "/groups/outer", json={"groupname": "outer2"})
    assert r.status_code == 201 and pivotal.get(org["url"] + "/groups/outer").status_code == 404
    assert set(pivotal.get(org["url"] + "/data/secrets/_acl").json()["read"]["groups"]) == {"admins", "outer2"}
    assert me.get(org["url"] + "/data/secrets").status_code == 200
    assert pivotal.delete(org["url"] + "/groups/inner").status_code == 200
    assert me.get(org["url"] + "/data/secrets").status_code == 403


def test_containers(frontend, pivotal, two_orgs):
    org, _ = two_orgs
    user, admin = join(frontend, pivotal, org, admin=True)
    assert "nodes" in pivotal.get(org["url"] + "/containers").json()
    assert pivotal.get(org["url"] + "/containers/nodes").json() == {"containername": "nodes",
                                                                   "containerpath": "nodes"}
    r = admin.post(org["url"] + "/containers", json={"id": "extra", "containerpath": "/"})
    assert r.status_code == 201, r.text
    assert admin.post(org["url"] + "/containers", json={"id": "extra"}).status_code == 409
    body = admin.get(org["url"] + "/containers/extra/_acl").json()
    assert body["read"] == {"actors": [user], "groups": []}
    assert admin.delete(org["url"] + "/containers/extra").status_code == 200
    assert admin.get(org["url"] + "/containers/extra").status_code == 404


@pytest.fixture(scope="module")
def second_frontend(postgres):
    workdir = tempfile.mkdtemp(prefix="chef-fe-api2-")
    fe = start_frontend(postgres, workdir, port=API_PORT + 7)
    yield fe
    stop_frontend(fe)
    shutil.rmtree(workdir, ignore_errors=True)


def test_removing_access_holds_at_once_on_every_frontend(frontend, second_frontend, pivotal, two_orgs):
    org, _ = two_orgs
    user, me = join(frontend, pivotal, org)
    other_url = second_frontend.url + f"/organizations/{org['name']}"
    assert pivotal.post(org["url"] + "/nodes", json={"name": "guarded"}).status_code == 201
    assert pivotal.post(org["url"] + "/groups", json={"id": "readers"}).status_code == 201
    assert pivotal.put(org["url"] + "/groups/readers",
                       json={"actors": {"users": [user], "clients": [], "groups": []}}).status_code == 200
    assert pivotal.put(org["url"] + "/nodes/guarded/_acl/read",
                       json={"read": {"actors": [], "groups": ["admins", "readers"]}}).status_code == 200
    for _ in range(3):  # warm both frontends' caches
        assert me.get(other_url + "/nodes/guarded").status_code == 200
        assert me.get(org["url"] + "/nodes/guarded").status_code == 200
    # out of the group through one frontend: the other refuses the very next request
    assert pivotal.put(org["url"] + "/groups/readers",
                       json={"actors": {"users": [], "clients": [], "groups": []}}).status_code == 200
    assert me.get(other_url + "/nodes/guarded").status_code == 403
    # out of the org: nothing of it is readable any more, on either frontend
    assert me.get(other_url + "/nodes").status_code == 200
    assert pivotal.delete(org["url"] + f"/users/{user}").status_code == 200
    assert me.get(other_url + "/nodes").status_code == 403
    assert me.get(org["url"] + "/nodes").status_code == 403


def test_migration_300_backfills_acls_of_existing_orgs(postgres):
    """A database at migration 299 with an org as part 1 recorded it gets ACE rows when upgraded."""
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS authz_upgrade")
        conn.execute("CREATE DATABASE authz_upgrade")
    dsn = postgres.dsn("authz_upgrade")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, sql in MIGRATIONS:
            if version < 300:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        acl = '{"read": {"actors": ["alice"], "groups": ["users"]}, "grant": {"actors": ["alice"], "groups": []}}'
        conn.execute("INSERT INTO users (id, authz_id, username) VALUES ('u1', 'au1', 'alice')")
        conn.execute("INSERT INTO orgs (id, authz_id, name, full_name, acl) VALUES ('o1', 'ao1', 'old', 'Old', %s)",
                     (acl,))
        conn.execute("INSERT INTO groups (id, org_id, authz_id, name) VALUES ('g1', 'o1', 'ag1', 'users')")
        conn.execute("INSERT INTO containers (id, org_id, authz_id, name, acl) VALUES ('c1', 'o1', 'ac1', 'nodes', %s)",
                     (acl,))
        conn.execute("INSERT INTO clients (id, org_id, authz_id, name) VALUES ('k1', 'o1', 'ak1', 'web1')")
        conn.execute("INSERT INTO nodes (id, org_id, name, environment, created_by, serialized_object, authz_id) "
                     "VALUES ('n1', 'o1', 'web1', '_default', 'k1', '{}', 'an1')")
    assert migrate(dsn) == [v for v, _ in MIGRATIONS if v >= 300]
    with psycopg.connect(dsn) as conn:
        aces = set(conn.execute("SELECT authz_id, perm, member FROM aces").fetchall())
    assert {("ao1", "read", "au1"), ("ao1", "read", "ag1"), ("ao1", "grant", "au1")} <= aces
    assert ("ac1", "read", "ag1") in aces
    assert {("an1", "read", "ag1"), ("an1", "update", "ak1")} <= aces  # the container's, and the creating client
    assert ("ak1", "update", "ak1") in aces  # a client holds its own ACL
    assert ("au1", "grant", "au1") in aces  # and a user its own
