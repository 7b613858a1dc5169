"""Other clients of the API: Ruby's mixlib-authentication signer, chef-server-ctl; and concurrent first starts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from chef_server.authn import KeyCache

from .conftest import session
from .signer import sign

pytestmark = pytest.mark.integration
HERE = os.path.dirname(__file__)


def _ruby_signer_works() -> bool:
    if shutil.which("ruby") is None:
        return False
    probe = subprocess.run(["ruby", "-ropenssl", "-e", 'require "mixlib/authentication/signedheaderauth"'],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _ruby_signer_works(), reason="needs Debian's ruby-mixlib-authentication")
@pytest.mark.parametrize("protocol", ["1.0", "1.1", "1.3"])
def test_requests_signed_by_mixlib_authentication(frontend, protocol):
    body = json.dumps({"name": "x"})
    for method, path, payload, expected in (("GET", "/users/pivotal", "", 200), ("POST", "/organizations", body, 400)):
        signed = subprocess.run(["ruby", os.path.join(HERE, "mixsign.rb"), frontend.pivotal_key_path, "pivotal",
                                 method, path, protocol], input=payload.encode(), capture_output=True, check=True)
        headers = {**json.loads(signed.stdout), "X-Ops-Server-API-Version": "1",
                   "Content-Type": "application/json", "Accept": "application/json"}
        r = requests.request(method, frontend.url + path, data=payload, headers=headers, timeout=30)
        assert r.status_code == expected, r.text  # 400: signature good, body invalid (no full_name)


def pivotal_headers(frontend, path: str, body: dict) -> dict:
    key = serialization.load_pem_private_key(frontend.pivotal_key.encode(), password=None)
    return {**sign(key, "pivotal", "POST", path, json.dumps(body).encode()), "Content-Type": "application/json"}


def ctl(frontend, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**frontend.env, "CHEF_SERVER_URL": frontend.url}
    return subprocess.run([sys.executable, "-m", "chef_server.ctl.main", *args], env=env, capture_output=True,
                          text=True, input=stdin, timeout=120)


def summary(text: str) -> dict[str, str]:
    """knife's aligned "key: value" lines as a dict."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_chef_server_ctl_users_orgs_and_keys(frontend, tmp_path):
    user, org = f"ctl-{uuid.uuid4().hex[:6]}", f"ctl-org-{uuid.uuid4().hex[:6]}"
    key_file = tmp_path / "user.pem"
    r = ctl(frontend, "user-create", user, "Jane", "Q", "Doe", f"{user}@example.com", "secret123", "-f", str(key_file))
    assert r.returncode == 0, r.stderr
    assert key_file.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert user in ctl(frontend, "user-list").stdout.split()
    shown = summary(ctl(frontend, "user-show", user).stdout)
    assert (shown["username"], shown["middle_name"], shown["display_name"]) == (user, "Q", "Jane Doe")
    r = ctl(frontend, "org-create", org, "Ctl Org")
    assert r.returncode == 0 and r.stdout.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert org in ctl(frontend, "org-list").stdout.split()
    assert ctl(frontend, "org-user-add", org, user, "--admin").returncode == 0
    assert summary(ctl(frontend, "user-show", user, "-l").stdout)["organizations"] == org
    assert ctl(frontend, "password", user, "newsecret1").returncode == 0
    r = requests.post(frontend.url + "/authenticate_user", timeout=30, data=json.dumps(
        {"username": user, "password": "newsecret1"}), headers=pivotal_headers(frontend, "/authenticate_user",
                                                                                {"username": user,
                                                                                 "password": "newsecret1"}))
    assert r.status_code == 200, r.text
    r = ctl(frontend, "add-user-key", user, "--key-name", "laptop")
    assert r.returncode == 0 and "PRIVATE KEY" in r.stdout
    assert "name: laptop" in ctl(frontend, "list-user-keys", user).stdout
    assert ctl(frontend, "delete-user-key", user, "laptop").returncode == 0
    assert ctl(frontend, "list-client-keys", org, f"{org}-validator").returncode == 0
    r = ctl(frontend, "org-user-remove", org, user)
    assert r.returncode == 1 and "admins group" in r.stderr  # still an admin
    assert ctl(frontend, "org-user-remove", org, user, "--force").returncode == 0
    assert ctl(frontend, "org-delete", org, "--yes").returncode == 0
    assert ctl(frontend, "user-delete", user, "--yes").returncode == 0
    r = ctl(frontend, "user-show", user)
    assert r.returncode == 1 and "Could not find user" in r.stderr


def test_server_admins_manage_users_but_not_superusers(frontend, tmp_path):
    """grant-server-admin-permissions lets a user manage other users' accounts at once; removing it takes that
    back; the superuser's account stays out of reach and pivotal stays a server admin."""
    admin, other = f"sa-{uuid.uuid4().hex[:6]}", f"sb-{uuid.uuid4().hex[:6]}"
    for name in (admin, other):
        r = ctl(frontend, "user-create", name, "A", "B", f"{name}@example.com", "secret123",
                "-f", str(tmp_path / f"{name}.pem"))
        assert r.returncode == 0, r.stderr
    as_admin = session((tmp_path / f"{admin}.pem").read_text(), user=admin)
    url = frontend.url
    assert as_admin.get(f"{url}/users").status_code == 403
    assert as_admin.get(f"{url}/users/{other}").status_code == 403

    r = ctl(frontend, "grant-server-admin-permissions", admin)
    assert r.returncode == 0 and "added to server-admins" in r.stdout, r.stderr
    assert ctl(frontend, "list-server-admins").stdout.split() == sorted(["pivotal", admin])
    assert other in as_admin.get(f"{url}/users").json()
    assert as_admin.get(f"{url}/users/{other}").status_code == 200
    assert as_admin.put(f"{url}/users/{other}", json={"username": other, "display_name": "Renamed",
                                                       "email": f"{other}@example.com"}).status_code == 200
    created = f"sc-{uuid.uuid4().hex[:6]}"
    r = as_admin.post(f"{url}/users", json={"username": created, "display_name": "C", "first_name": "C",
                                             "last_name": "D", "email": f"{created}@example.com",
                                             "password": "secret123"})
    assert r.status_code == 201, r.text
    assert as_admin.delete(f"{url}/users/{created}").status_code == 200
    assert as_admin.put(f"{url}/users/pivotal", json={"username": "pivotal", "display_name": "x",
                                                       "email": "x@example.com"}).status_code == 403
    assert as_admin.delete(f"{url}/users/pivotal").status_code == 403

    r = ctl(frontend, "remove-server-admin-permissions", admin)
    assert r.returncode == 0, r.stderr
    assert as_admin.get(f"{url}/users").status_code == 403
    r = ctl(frontend, "remove-server-admin-permissions", admin)
    assert r.returncode == 1 and "not a member of server-admins" in r.stderr
    r = ctl(frontend, "remove-server-admin-permissions", "pivotal")
    assert r.returncode == 1 and "superuser" in r.stderr
    r = ctl(frontend, "grant-server-admin-permissions", "no-such-user")
    assert r.returncode == 1 and r.stderr.strip() == "ERROR: User no-such-user was not found."
    assert "pivotal" in ctl(frontend, "list-server-admins").stdout.split()
    for name in (admin, other):
        assert ctl(frontend, "user-delete", name, "--yes").returncode == 0


def test_two_frontends_starting_together_migrate_once(postgres, tmp_path):
    """Both run migrations and the superuser bootstrap at once on an empty database: one wins, both agree."""
    db = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")

    def prepare(i: int) -> subprocess.CompletedProcess:
        env = {**os.environ, "CHEF_SERVER_DB_CONNINFO": postgres.dsn(db),
               "CHEF_SERVER_PIVOTAL_KEY_PATH": str(tmp_path / f"pivotal-{i}.pem")}
        return subprocess.run([sys.executable, "-m", "chef_server.server", "--prepare-only"], env=env,
                              capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(prepare, range(2)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert (tmp_path / "pivotal-0.pem").read_text() == (tmp_path / "pivotal-1.pem").read_text()
    with psycopg.connect(postgres.dsn(db)) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE superuser").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1
        # nodes are stored lz4-compressed (Debian's PostgreSQL has lz4)
        assert conn.execute("SELECT attcompression FROM pg_attribute WHERE attrelid = 'nodes'::regclass "
                            "AND attname = 'serialized_object'").fetchone()[0] == "l"


def test_key_cache_listener_follows_notifications_and_beats(postgres):
    """The listener forgets cached keys on every chef_auth notification and queries when quiet."""
    async def scenario() -> tuple[int, int]:
        cache, beats = KeyCache(), []
        task = asyncio.create_task(cache.listen(postgres.dsn(), on_heartbeat=lambda: beats.append(1),
                                                heartbeat=0.2))
        for _ in range(100):
            if cache.listening:
                break
            await asyncio.sleep(0.05)
        generation = cache.generation
        async with await psycopg.AsyncConnection.connect(postgres.dsn(), autocommit=True) as conn:
            await conn.execute("NOTIFY chef_auth, 'keys'")
        for _ in range(100):
            if cache.generation > generation and beats:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        return cache.generation - generation, len(beats)

    invalidations, beats = asyncio.run(scenario())
    assert invalidations >= 1 and beats >= 1
