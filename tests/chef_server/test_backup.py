"""chef-server-ctl backup and restore: pure decisions, then real processes — objects made through the API on
one PostgreSQL, backed up, restored into a second, empty one whose API server and search engine then serve
them; and the refusals, each leaving everything as it was."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from chef_server.ctl import backup, health

from . import opensearch
from .conftest import API_PORT, start_frontend, stop_frontend
from .pg import Postgres
from .test_api import name, session
from .test_cookbooks import cookbook, upload_files

SEARCH_HOST = os.environ.get("CHEF_FE_TEST_SEARCH_HOST", "127.0.0.42")
RESTORE_PG_HOST = os.environ.get("CHEF_FE_TEST_RESTORE_PG_HOST", "127.0.0.43")
RESTORE_API_HOST = os.environ.get("CHEF_FE_TEST_RESTORE_API_HOST", "127.0.0.45")


# -- pure decisions ---------------------------------------------------------------------------------------------

def test_default_path_is_a_sortable_utc_timestamp():
    when = datetime.datetime(2026, 12, 1, 17, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert backup.default_path(when) == Path("/var/opt/chef-server/backups/chef-server-backup-20261201T150405Z.dump")


@pytest.mark.parametrize(("orgs", "users", "reason"), [
    ([], [], None),
    ([], ["pivotal"], None),
    (["acme"], ["pivotal"], "1 organization(s) (acme)"),
    ([], ["pivotal", "bob"], "1 user(s) (bob)"),
    (["d", "c", "b", "a"], ["bob"], "4 organization(s) (a, b, c, ...) and 1 user(s) (bob)"),
])
def test_nonempty_reason(orgs, users, reason):
    assert backup.nonempty_reason(orgs, users, "pivotal") == reason


@given(st.lists(st.text(min_size=1)), st.lists(st.text(min_size=1)))
def test_empty_exactly_when_no_org_and_no_user_but_the_superuser(orgs, users):
    empty = not orgs and set(users) <= {"pivotal"}
    assert (backup.nonempty_reason(orgs, users, "pivotal") is None) == empty


@pytest.mark.parametrize(("stderr", "line"), [
    ('pg_dump: error: connection to server at "h" failed: Connection refused\n\tIs the server running?\n',
     'connection to server at "h" failed: Connection refused'),
    ("\n  psql: error: boom\n", "boom"),
    ("", "fallback"),
])
def test_tool_error_is_the_first_line(stderr, line):
    assert backup.tool_error(stderr, "fallback") == line


# -- real processes ---------------------------------------------------------------------------------------------


def ctl(fe, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """chef-server-ctl as an operator runs it, with that frontend's settings (stdin not a terminal)."""
    return subprocess.run([sys.executable, "-m", "chef_server.ctl.main", *args], env=fe.env, stdin=stdin,
                          capture_output=True, text=True, timeout=300)


def fingerprint(dsn: str) -> dict[str, str]:
    """Every public table's rows, hashed: equal fingerprints, nothing changed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'public' ORDER BY 1")]
        return {t: conn.execute(f'SELECT md5(coalesce(string_agg(x::text, \',\' ORDER BY x::text), \'\')) '
                                f'FROM "{t}" x').fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def engine():
    with opensearch.running(SEARCH_HOST, "chef-fe-backup-search-") as node:
        yield node


@pytest.fixture(scope="module")
def source(frontend):
    """One of each kind of object, made through the API of the source cluster (which indexes into nothing)."""
    pivotal = session(frontend.pivotal_key)
    org, user, client, node, bag = name("org"), name("user"), name("client"), name("node"), name("bag")
    base = f"{frontend.url}/organizations/{org}"
    r = pivotal.post(frontend.url + "/organizations", json={"name": org, "full_name": "Backed Up"})
    assert r.status_code == 201, r.text
    r = pivotal.post(frontend.url + "/users", json={"username": user, "display_name": user, "password": "secret12",
                                                    "email": f"{user}@example.com", "create_key": True})
    assert r.status_code == 201, r.text
    user_key = r.json()["chef_key"]["private_key"]
    assert pivotal.post(base + "/users", json={"username": user}).status_code == 201
    r = pivotal.post(base + "/clients", json={"name": client, "create_key": True})
    assert r.status_code == 201, r.text
    client_key = r.json()["chef_key"]["private_key"]
    assert pivotal.post(base + "/nodes", json={"name": node, "run_list": ["recipe[cb]"], "chef_environment": "_default",
                                               "normal": {"tags": ["restored"]}}).status_code == 201
    assert pivotal.post(base + "/data", json={"name": bag}).status_code == 201
    assert pivotal.post(f"{base}/data/{bag}", json={"id": "item1", "secret": "s3"}).status_code == 201
    files = {"recipes/default.rb": b"log 'restored'\n", "files/default/blob": os.urandom(20000)}
    upload_files(frontend, org, list(files.values()))
    assert pivotal.put(f"{base}/cookbooks/cb/1.0.0", json=cookbook("cb", "1.0.0", files)).status_code == 201
    paths = [f"/users/{user}", f"/organizations/{org}", f"/organizations/{org}/users", f"/organizations/{org}/clients",
             f"/organizations/{org}/clients/{client}", f"/organizations/{org}/nodes/{node}",
             f"/organizations/{org}/data/{bag}", f"/organizations/{org}/data/{bag}/item1",
             f"/organizations/{org}/cookbooks"]
    return {"org": org, "user": user, "user_key": user_key, "client": client, "client_key": client_key,
            "node": node, "files": files, "paths": paths,
            "objects": {p: pivotal.get(frontend.url + p).json() for p in paths},
            "cookbook": pivotal.get(f"{base}/cookbooks/cb/1.0.0").json()}


@pytest.fixture(scope="module")
def dump(frontend, source):
    workdir = Path(tempfile.mkdtemp(prefix="chef-fe-backup-"))
    path = workdir / "chef.dump"
    done = ctl(frontend, "backup", "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{path} ({path.stat().st_size} bytes)"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(workdir) == ["chef.dump"]
    yield path
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def target_pg(postgres):
    pg = Postgres(host=RESTORE_PG_HOST)
    pg.start()
    yield pg
    pg.stop()


def target_frontend(pg, workdir: str, engine):
    return start_frontend(pg, workdir, port=API_PORT, host=RESTORE_API_HOST, search_url=engine.url,
                          search_test_flush="1", search_poll="0.2", search_sync_timeout="2")


@pytest.fixture(scope="module")
def restored(frontend, source, dump, target_pg, engine):
    """A new cluster (its API started: schema and its own superuser), then `restore --yes` on it, then its API
    restarted as the docs say."""
    workdir = tempfile.mkdtemp(prefix="chef-fe-restore-")
    fe = target_frontend(target_pg, workdir, engine)
    try:
        assert fe.pivotal_key != frontend.pivotal_key
        done = ctl(fe, "restore", str(dump), "--yes")
        assert done.returncode == 0, done.stderr
        assert f"{source['org']}: " in done.stdout and "objects queued for indexing" in done.stdout
        assert fe.pivotal_key == frontend.pivotal_key  # the restored cluster's superuser key, via the start path
        stop_frontend(fe)
        fe = target_frontend(target_pg, workdir, engine)
        yield fe
    finally:
        stop_frontend(fe)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.integration
def test_every_object_reads_back_equal(frontend, source, restored):
    pivotal = session(restored.pivotal_key)  # the restored superuser key signs requests
    for path in source["paths"]:
        r = pivotal.get(restored.url + path)
        assert r.status_code == 200, (path, r.text)
        # listings hold URLs of the frontend that answers
        assert r.json() == json.loads(json.dumps(source["objects"][path]).replace(frontend.url, restored.url)), path


@pytest.mark.integration
def test_cookbook_files_download_with_their_checksums(source, restored):
    got = session(restored.pivotal_key).get(
        f"{restored.url}/organizations/{source['org']}/cookbooks/cb/1.0.0").json()
    for segment in ("recipes", "files"):
        assert [(f["path"], f["checksum"]) for f in got[segment]] == \
            [(f["path"], f["checksum"]) for f in source["cookbook"][segment]]
        for entry in got[segment]:
            download = requests.get(entry["url"], timeout=30)
            assert download.status_code == 200
            assert hashlib.md5(download.content).hexdigest() == entry["checksum"]
            assert download.content == source["files"][entry["path"]]


@pytest.mark.integration
def test_search_finds_the_node_after_restore(source, restored):
    assert urllib.request.urlopen(urllib.request.Request(restored.url + "/_search_flush", method="POST"),
                                  timeout=120).status == 200
    r = session(restored.pivotal_key).get(
        f"{restored.url}/organizations/{source['org']}/search/node?q=tags:restored")
    assert r.status_code == 200, r.text
    assert [row["name"] for row in r.json()["rows"]] == [source["node"]]


@pytest.mark.integration
def test_restored_user_and_client_keys_sign(source, restored):
    user = session(source["user_key"], user=source["user"])
    assert user.get(f"{restored.url}/users/{source['user']}").status_code == 200
    client = session(source["client_key"], user=source["client"])
    r = client.get(f"{restored.url}/organizations/{source['org']}/nodes/{source['node']}")
    assert r.status_code == 200, r.text


@pytest.mark.integration
def test_restore_into_a_database_with_data_is_refused(source, dump, target_pg, restored):
    before = fingerprint(target_pg.dsn())
    done = ctl(restored, "restore", str(dump), "--yes")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: the database holds ") and done.stderr.count("\n") == 1, done.stderr
    assert source["org"] in done.stderr or ", ...)" in done.stderr
    assert fingerprint(target_pg.dsn()) == before


@pytest.mark.integration
def test_restore_without_yes_needs_a_terminal(dump, target_pg, restored):
    before = fingerprint(target_pg.dsn())
    done = ctl(restored, "restore", str(dump), "--force")
    assert done.returncode == 1 and "pass --yes when stdin is not a terminal" in done.stderr
    assert fingerprint(target_pg.dsn()) == before


@pytest.mark.integration
@pytest.mark.parametrize(("damage", "error"), [
    ("garbage", "is not a readable backup"),
    ("truncated", "is "),  # "not a readable backup", or "damaged, nothing changed" when the cut is in the data
    ("corrupted", "is damaged, nothing changed"),
    ("missing", "cannot read")])
def test_damaged_dump_is_refused_and_changes_nothing(dump, target_pg, restored, tmp_path, damage, error):
    """--force, so only the dump's damage stands between it and replacing everything: the transaction must."""
    bad = tmp_path / "bad.dump"
    if damage == "garbage":
        bad.write_bytes(b"not a dump\n" * 100)
    elif damage == "truncated":
        bad.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    elif damage == "corrupted":  # the last table's compressed data: pg_restore fails after sending most of the SQL
        data = bytearray(dump.read_bytes())
        for i in range(len(data) - 50, len(data) - 38):
            data[i] ^= 0xFF
        bad.write_bytes(bytes(data))
    before = fingerprint(target_pg.dsn())
    done = ctl(restored, "restore", str(bad), "--yes", "--force")
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("ERROR: ") and done.stderr.count("\n") == 1, done.stderr
    assert error in done.stderr, done.stderr
    assert fingerprint(target_pg.dsn()) == before


@pytest.mark.integration
def test_backup_of_an_unreachable_database_leaves_no_file(frontend, tmp_path):
    env = {**frontend.env, "CHEF_SERVER_DB_CONNINFO": f"host={RESTORE_PG_HOST} port=1 dbname=opscode_chef "
                                                      "user=postgres connect_timeout=5"}
    done = subprocess.run([sys.executable, "-m", "chef_server.ctl.main", "backup", "--file", str(tmp_path / "b.dump")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: pg_dump failed: ") and done.stderr.count("\n") == 1, done.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.integration
def test_backup_to_an_unwritable_place_fails_cleanly(frontend, tmp_path):
    done = ctl(frontend, "backup", "--file", str(tmp_path / "no" / "such" / "dir.dump"))
    assert done.returncode == 1
    assert done.stderr.startswith(f"ERROR: cannot write in {tmp_path}/no/such") and done.stderr.count("\n") == 1


@pytest.mark.integration
def test_status_health_lines_of_a_real_api_and_engine(restored, engine):
    host, port = restored.url.removeprefix("http://").rsplit(":", 1)
    assert health.api_health(host, int(port)) == (True, "chef-server-api: ok (chef_sql pong)")
    assert health.search_health(engine.url) in ((True, "search: green (1 nodes)"), (True, "search: yellow (1 nodes)"))
