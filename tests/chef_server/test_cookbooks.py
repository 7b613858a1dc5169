"""Sandboxes, files, cookbooks, the depsolver, artifacts and policies against a real PostgreSQL and real API
servers, including two frontends sharing one database and a frontend killed in the middle of an upload."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
import requests

from chef_server.storage.files import CHUNK

from .conftest import API_HOST, API_PORT, start_frontend, stop_frontend
from .signer import sign
from .test_api import name, private_key, session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def org(frontend):
    pivotal = session(frontend.pivotal_key)
    org_name = name("cb")
    r = pivotal.post(frontend.url + "/organizations", json={"name": org_name, "full_name": "Cookbook Org"})
    assert r.status_code == 201, r.text
    return org_name


@pytest.fixture(scope="module")
def second(postgres, frontend):
    """Another API server on the same database, with required_recipe configured."""
    workdir = tempfile.mkdtemp(prefix="chef-fe-api2-")
    recipe = os.path.join(workdir, "required.rb")
    with open(recipe, "w") as fh:
        fh.write("log 'required'\n")
    os.environ["CHEF_SERVER_REQUIRED_RECIPE_PATH"] = recipe
    try:
        fe = start_frontend(postgres, workdir, port=API_PORT + 1)
    finally:
        del os.environ["CHEF_SERVER_REQUIRED_RECIPE_PATH"]
    yield fe
    stop_frontend(fe)
    shutil.rmtree(workdir, ignore_errors=True)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def upload_files(fe, org: str, contents: list[bytes], api: int = 1) -> None:
    """knife's upload: a sandbox, a PUT per file that needs it, then the commit."""
    chef = session(fe.pivotal_key, api=api)
    r = chef.post(f"{fe.url}/organizations/{org}/sandboxes", json={"checksums": {md5(c): None for c in contents}})
    assert r.status_code == 201, r.text
    sandbox = r.json()
    for data in contents:
        entry = sandbox["checksums"][md5(data)]
        if entry["needs_upload"]:
            put = requests.put(entry["url"], data=data, timeout=30, headers={
                "Content-Type": "application/x-binary",
                "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()})
            assert put.status_code == 200, put.text
    r = chef.put(sandbox["uri"], json={"is_completed": True})
    assert r.status_code == 200, r.text


def cookbook(cb: str, version: str, files: dict[str, bytes] | None = None, deps: dict | None = None) -> dict:
    """A v0/v1 cookbook document: files by segment path, e.g. {"recipes/default.rb": b"..."}."""
    doc: dict = {"name": f"{cb}-{version}", "cookbook_name": cb, "version": version,
                 "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version",
                 "metadata": {"name": cb, "version": version, "dependencies": deps or {}}}
    for path, data in (files or {}).items():
        segment, _, rest = path.partition("/")
        doc.setdefault(segment, []).append({"name": rest, "path": path, "checksum": md5(data),
                                            "specificity": "default"})
    return doc


def test_upload_on_one_frontend_download_from_another(frontend, second, org):
    files = {"recipes/default.rb": b"log 'hello'\n", "templates/default/a.erb": os.urandom(5000),
             "root_files/metadata.rb": b"name 'two'\n"}
    upload_files(frontend, org, list(files.values()))
    chef = session(frontend.pivotal_key)
    r = chef.put(f"{frontend.url}/organizations/{org}/cookbooks/two/1.0.0", json=cookbook("two", "1.0.0", files))
    assert r.status_code == 201, r.text

    other = session(second.pivotal_key)
    got = other.get(f"{second.url}/organizations/{org}/cookbooks/two/1.0.0")
    assert got.status_code == 200
    listed = {f"{seg}/{f['name']}": f for seg in ("recipes", "templates", "root_files") for f in got.json()[seg]}
    assert set(listed) == set(files)
    for path, entry in listed.items():
        assert urlsplit(entry["url"]).netloc == urlsplit(second.url).netloc
        download = requests.get(entry["url"], timeout=30)
        assert download.status_code == 200 and download.content == files[path]

    # API v2: one all_files list, names carry their segment
    v2_session = session(second.pivotal_key, version="1.0", api=2)  # chefsessionlib's 1.3 signs API v1 only
    v2 = v2_session.get(f"{second.url}/organizations/{org}/cookbooks/two/_latest")
    assert sorted(f["name"] for f in v2.json()["all_files"]) == sorted(files)
    assert "recipes" not in v2.json()

    # a URL handed out by the first frontend is valid on the second (the signing key lives in PostgreSQL)
    url = chef.get(f"{frontend.url}/organizations/{org}/cookbooks/two/1.0.0").json()["recipes"][0]["url"]
    parts = urlsplit(url)
    r = requests.get(f"{second.url}{parts.path}?{parts.query}", headers={"Host": parts.netloc}, timeout=30)
    assert r.status_code == 200 and r.content == files["recipes/default.rb"]


def test_signed_urls_refuse_tampering_and_wrong_methods(frontend, org):
    data = b"signed content"
    upload_files(frontend, org, [data])
    chef = session(frontend.pivotal_key)
    assert chef.put(f"{frontend.url}/organizations/{org}/cookbooks/signed/1.0.0",
                    json=cookbook("signed", "1.0.0", {"files/a.txt": data})).status_code == 201
    url = chef.get(f"{frontend.url}/organizations/{org}/cookbooks/signed/1.0.0").json()["files"][0]["url"]
    assert requests.get(url, timeout=30).content == data
    assert requests.get(url.replace("X-Amz-Expires=900", "X-Amz-Expires=9000"), timeout=30).status_code == 403
    assert requests.put(url, data=data, timeout=30).status_code == 403  # signed for GET only
    assert requests.get(url.split("?")[0], timeout=30).status_code == 403


def test_signed_urls_name_the_host_as_clients_do(frontend, org):
    """A URL handed out for Host "chef.example" works when the client sends "chef.example:80" (Ruby's
    clients add the default port), not with another port."""
    data = b"host-named content"
    upload_files(frontend, org, [data])
    chef = session(frontend.pivotal_key)
    assert chef.put(f"{frontend.url}/organizations/{org}/cookbooks/hosted/1.0.0",
                    json=cookbook("hosted", "1.0.0", {"files/a.txt": data})).status_code == 201
    got = chef.get(f"{frontend.url}/organizations/{org}/cookbooks/hosted/1.0.0", headers={"Host": "chef.example"})
    url = got.json()["files"][0]["url"]
    assert url.startswith("http://chef.example/bookshelf/")
    local = frontend.url + url[len("http://chef.example"):]
    assert requests.get(local, headers={"Host": "chef.example:80"}, timeout=30).content == data
    assert requests.get(local, headers={"Host": "chef.example:8080"}, timeout=30).status_code == 403


def test_sandbox_rules(frontend, org):
    chef = session(frontend.pivotal_key)
    base = f"{frontend.url}/organizations/{org}/sandboxes"
    assert chef.post(base, json={}).json() == {"error": ["Field 'checksums' missing"]}
    assert chef.post(base, json={"checksums": {"nothex": None}}).json() == {"error": ["Bad checksums!"]}
    good, bad = b"good bytes", b"other bytes"
    sandbox = chef.post(base, json={"checksums": {md5(good): None}}).json()
    url = sandbox["checksums"][md5(good)]["url"]
    wrong_md5 = base64.b64encode(hashlib.md5(bad).digest()).decode()
    assert requests.put(url, data=good, headers={"Content-MD5": wrong_md5}, timeout=30).status_code == 400
    assert requests.put(url, data=bad, timeout=30).status_code == 400  # bytes not matching their checksum
    r = chef.put(sandbox["uri"], json={"is_completed": True})
    assert r.status_code == 503
    assert r.json() == {"error": [f"Cannot update sandbox {sandbox['sandbox_id']}: the following checksums have "
                                  f"not been uploaded: {md5(good)}"]}
    assert requests.put(url, data=good, timeout=30).status_code == 200
    assert chef.put(sandbox["uri"], json={"is_completed": True}).status_code == 200
    again = chef.post(base, json={"checksums": {md5(good): None}}).json()
    assert again["checksums"][md5(good)] == {"needs_upload": False}


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 17])
def test_files_of_every_size_come_back_whole(frontend, postgres, org, size):
    """Empty, one byte, exactly one chunk, one byte over, several chunks: the same bytes, length and ETag."""
    data = os.urandom(size)
    upload_files(frontend, org, [data])
    with psycopg.connect(postgres.dsn()) as conn:
        chunks = conn.execute("SELECT count(*) FROM file_chunks WHERE checksum = %s", (md5(data),)).fetchone()[0]
    assert chunks == max(1, -(-size // CHUNK))
    chef = session(frontend.pivotal_key)
    name = f"sized{size}"
    assert chef.put(f"{frontend.url}/organizations/{org}/cookbooks/{name}/1.0.0",
                    json=cookbook(name, "1.0.0", {"files/f.bin": data})).status_code == 201
    url = chef.get(f"{frontend.url}/organizations/{org}/cookbooks/{name}/1.0.0").json()["files"][0]["url"]
    got = requests.get(url, timeout=60)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-length"] == str(size) and got.headers["etag"] == f'"{md5(data)}"'


def test_manifest_must_name_committed_files(frontend, org):
    chef = session(frontend.pivotal_key)
    r = chef.put(f"{frontend.url}/organizations/{org}/cookbooks/orphan/1.0.0",
                 json=cookbook("orphan", "1.0.0", {"recipes/default.rb": b"never uploaded"}))
    assert r.status_code == 400
    assert r.json() == {"error": ["Manifest has a checksum that hasn't been uploaded."]}
    assert chef.get(f"{frontend.url}/organizations/{org}/cookbooks/orphan").status_code == 404


def test_frozen_versions_and_force(frontend, org):
    chef = session(frontend.pivotal_key)
    url = f"{frontend.url}/organizations/{org}/cookbooks/icy/1.0.0"
    assert chef.put(url, json={**cookbook("icy", "1.0.0"), "frozen?": True}).status_code == 201
    r = chef.put(url, json=cookbook("icy", "1.0.0"))
    assert r.status_code == 409
    assert r.json() == {"error": ["The cookbook icy at version 1.0.0 is frozen. Use the 'force' option to override."]}
    r = chef.put(url + "?force=true", json=cookbook("icy", "1.0.0"))
    assert r.status_code == 200 and r.json()["frozen?"] is True  # force updates but never thaws
    assert chef.get(url).json()["frozen?"] is True


def test_deleting_the_last_reference_collects_the_file(frontend, postgres, org):
    data = os.urandom(100)
    upload_files(frontend, org, [data])
    chef = session(frontend.pivotal_key)
    url = f"{frontend.url}/organizations/{org}/cookbooks/gone/1.0.0"
    assert chef.put(url, json=cookbook("gone", "1.0.0", {"files/x": data})).status_code == 201
    assert chef.delete(url).status_code == 200
    with psycopg.connect(postgres.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM files WHERE checksum = %s", (md5(data),)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM file_chunks WHERE checksum = %s", (md5(data),)).fetchone()[0] == 0
    assert chef.get(f"{frontend.url}/organizations/{org}/cookbooks/gone").status_code == 404


def test_listings_universe_and_depsolver(frontend, org):
    chef = session(frontend.pivotal_key)
    base = f"{frontend.url}/organizations/{org}"
    for cb, version, deps in [("app", "1.0.0", {"lib": ">= 1.0"}), ("app", "2.0.0", {"lib": "~> 2.0"}),
                              ("lib", "1.5.0", {}), ("lib", "2.1.0", {}), ("lib", "3.0.0", {})]:
        assert chef.put(f"{base}/cookbooks/{cb}/{version}", json=cookbook(cb, version, deps=deps)).status_code == 201
    listing = chef.get(f"{base}/cookbooks").json()
    assert [v["version"] for v in listing["app"]["versions"]] == ["2.0.0"]
    assert [v["version"] for v in chef.get(f"{base}/cookbooks?num_versions=all").json()["lib"]["versions"]] == [
        "3.0.0", "2.1.0", "1.5.0"]
    assert chef.get(f"{base}/cookbooks/_latest").json()["lib"] == f"{base}/cookbooks/lib/3.0.0"
    universe = chef.get(f"{base}/universe").json()
    assert universe["app"]["2.0.0"]["dependencies"] == {"lib": "~> 2.0"}
    assert universe["app"]["1.0.0"]["dependencies"] == {"lib": ">= 1.0"}

    r = chef.post(f"{base}/environments/_default/cookbook_versions", json={"run_list": ["app::default"]})
    assert r.status_code == 200, r.text
    assert {n: cb["version"] for n, cb in r.json().items()} == {"app": "2.0.0", "lib": "2.1.0"}
    r = chef.post(f"{base}/environments/_default/cookbook_versions", json={"run_list": ["app@1.0.0"]})
    assert {n: cb["version"] for n, cb in r.json().items()} == {"app": "1.0.0", "lib": "3.0.0"}
    r = chef.post(f"{base}/environments/_default/cookbook_versions", json={"run_list": ["nothere"]})
    assert r.status_code == 412
    assert r.json()["error"][0]["non_existent_cookbooks"] == ["nothere"]
    r = chef.post(f"{base}/environments/_default/cookbook_versions", json={"run_list": "app"})
    assert r.status_code == 400 and r.json() == {"error": ["Field 'run_list' is not a valid run list"]}
    r = chef.post(f"{base}/environments/not@environment/cookbook_versions", json={"run_list": []})
    assert (r.status_code, r.json()) == (404, {"error": ["environment 'not@environment' not found"]})


def test_cookbook_artifacts_and_policies(frontend, org):
    chef = session(frontend.pivotal_key)
    base = f"{frontend.url}/organizations/{org}"
    ident = "1" * 40
    artifact = {**cookbook("art", "1.0.0"), "name": "art", "identifier": ident}
    assert chef.put(f"{base}/cookbook_artifacts/art/{ident}", json=artifact).status_code == 201
    assert chef.put(f"{base}/cookbook_artifacts/art/{ident}", json=artifact).status_code == 409
    assert chef.get(f"{base}/cookbook_artifacts").json()["art"]["versions"][0]["identifier"] == ident

    policy = {"revision_id": "a" * 40, "name": "web", "run_list": ["recipe[art::default]"],
              "cookbook_locks": {"art": {"identifier": ident, "version": "1.0.0"}}}
    assert chef.put(f"{base}/policy_groups/prod/policies/web", json=policy).status_code == 201
    assert chef.get(f"{base}/policy_groups/prod/policies/web").json() == policy
    assert chef.get(f"{base}/policies/web/revisions/{'a' * 40}").json()["policy_group_list"] == ["prod"]
    assert chef.get(f"{base}/policy_groups").json() == {
        "prod": {"uri": f"{base}/policy_groups/prod", "policies": {"web": {"revision_id": "a" * 40}}}}
    r = chef.put(f"{base}/policy_groups/prod/policies/web", json={**policy, "name": "other"})
    assert r.json() == {"error": ["Field 'name' invalid : web does not match other"]}


def test_required_recipe_and_no_automate(frontend, second, org):
    assert requests.get(f"{frontend.url}/organizations/{org}/required_recipe", timeout=30).status_code == 404
    assert requests.get(f"{second.url}/organizations/{org}/required_recipe", timeout=30).status_code == 400
    r = session(second.pivotal_key).get(f"{second.url}/organizations/{org}/required_recipe")
    assert r.status_code == 200 and r.text == "log 'required'\n"
    chef = session(frontend.pivotal_key)
    assert chef.post(f"{frontend.url}/organizations/{org}/data-collector", json={}).status_code == 404


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_controls_are_gone_signed_or_not(frontend, org, method):
    gone = (410, {"error": "Resource gone, analytics is no longer supported by Chef Server"})
    url = f"{frontend.url}/organizations/{org}/controls"
    r = session(frontend.pivotal_key).request(method, url, json={})
    assert (r.status_code, r.json()) == gone
    r = requests.request(method, url, json={}, timeout=30)
    assert (r.status_code, r.json()) == gone


def _partial_request(host: str, port: int, head: str, first: bytes) -> socket.socket:
    """Send a request's head and the first part of its body, and leave it hanging."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(head.encode() + first)
    return sock


def test_frontend_killed_mid_upload_leaves_nothing_half_visible(postgres, frontend, org):
    workdir = tempfile.mkdtemp(prefix="chef-fe-kill-")
    victim = start_frontend(postgres, workdir, port=API_PORT + 2)
    try:
        data = os.urandom(2 * 1024 * 1024)
        chef = session(victim.pivotal_key)
        sandbox = chef.post(f"{victim.url}/organizations/{org}/sandboxes",
                            json={"checksums": {md5(data): None}}).json()
        parts = urlsplit(sandbox["checksums"][md5(data)]["url"])
        head = (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Length: {len(data)}\r\nContent-Type: application/x-binary\r\n\r\n")
        file_upload = _partial_request(API_HOST, API_PORT + 2, head, data[: len(data) // 2])
        body = orjson.dumps(cookbook("halfway", "1.0.0"))  # a cookbook upload, cut in the middle
        path = f"/organizations/{org}/cookbooks/halfway/1.0.0"
        headers = sign(private_key(victim.pivotal_key), "pivotal", "PUT", path, body)
        headers.update({"Host": f"{API_HOST}:{API_PORT + 2}", "Content-Type": "application/json",
                        "Content-Length": str(len(body))})
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        cookbook_upload = _partial_request(API_HOST, API_PORT + 2, head, body[: len(body) // 2])
        time.sleep(1)  # both requests are inside the server, their transactions open
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        file_upload.close()
        cookbook_upload.close()
    finally:
        stop_frontend(victim)
        shutil.rmtree(workdir, ignore_errors=True)
    survivor = session(frontend.pivotal_key)
    assert survivor.get(f"{frontend.url}/organizations/{org}/cookbooks/halfway").status_code == 404
    with psycopg.connect(postgres.dsn()) as conn:
        for table in ("files", "file_chunks", "checksums"):
            count = conn.execute(f"SELECT count(*) FROM {table} WHERE checksum = %s", (md5(data),)).fetchone()[0]
            assert count == 0, table
    r = survivor.put(sandbox["uri"].replace(victim.url, frontend.url), json={"is_completed": True})
    assert r.status_code == 503  # the half-sent file never counts as uploaded


def test_concurrent_uploads_of_one_new_version(frontend, org):
    url = f"{frontend.url}/organizations/{org}/cookbooks/racy/1.0.0"

    def put(_):
        return session(frontend.pivotal_key).put(url, json=cookbook("racy", "1.0.0")).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, range(8)))
    assert statuses.count(201) == 1 and set(statuses) <= {201, 200, 409}, statuses
