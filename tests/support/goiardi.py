"""goiardi (Debian's Chef server in Go) as a real Chef server frontend on the backend cluster,
and a signed Chef API client (chefsessionlib) that records every acknowledged object."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from chefsessionlib import ChefSession
from chefsessionlib.chefsessionlibexceptions import InvalidAuthentication

SCHEMA = Path("/usr/share/goiardi/sql-files/sql-files/goiardi-schema-postgres.sql")
PORT = 4545


def load_schema(host: str, user: str, password: str) -> None:
    """Create the goiardi database and load its schema, through a frontend's HAProxy (the leader)."""
    with psycopg.connect(host=host, port=5432, user=user, password=password, dbname="postgres",
                         autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP DATABASE IF EXISTS goiardi")
        conn.execute("CREATE DATABASE goiardi")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-U", user, "-d", "goiardi", "-f", str(SCHEMA)],
                   env=dict(os.environ, PGPASSWORD=password), check=True, capture_output=True, text=True)


@dataclass
class Goiardi:
    """One frontend: goiardi on `address`, its PostgreSQL reached through the HAProxy on the
    same address (or on `db_host`). `shared` holds what every frontend shares: the .pem files and the file store."""

    name: str
    address: str
    base: Path
    shared: Path
    user: str
    password: str
    proc: subprocess.Popen[bytes] | None = None
    db_host: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{PORT}"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.shared / "lfs").mkdir(parents=True, exist_ok=True)
        conf = self.base / "goiardi.conf"
        conf.write_text(f"""\
ipaddress = "{self.address}"
port = {PORT}
hostname = "{self.address}"
conf-root = "{self.shared}"
log-level = "info"
use-auth = true
local-filestore-dir = "{self.shared / 'lfs'}"
use-postgresql = true
pg-search = true
convert-search = true
[postgresql]
  username = "{self.user}"
  password = "{self.password}"
  host = "{self.db_host or self.address}"
  port = "5432"
  dbname = "goiardi"
  sslmode = "disable"
""")
        conf.chmod(0o600)
        self.proc = subprocess.Popen(["goiardi", "-c", str(conf)], stdout=(self.base / "goiardi.log").open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"goiardi {self.name} exited: {(self.base / 'goiardi.log').read_text()[-500:]}")
            try:
                # Any answer will do ("/" wants a signed request); the keys come first.
                requests.get(self.url + "/", timeout=1)
                if (self.shared / "admin.pem").exists():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"goiardi {self.name} did not answer on {self.url}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


RETRYABLE = {401, 500, 502, 503, 504}  # goiardi answers 401 while its database is unreachable


@dataclass
class ChefClient:
    """Creates nodes, roles, environments, data bag items and cookbook versions through every
    frontend in turn, retrying through an outage, and records each acknowledgement."""

    frontends: list[str]  # base URLs
    key: str  # admin.pem
    acked: list[tuple[str, str]] = field(default_factory=list)  # (collection path, name)
    ack_times: list[float] = field(default_factory=list)
    cookbook_files: dict[str, bytes] = field(default_factory=dict)  # "demo/0.1.N" -> recipe bytes
    retries: int = 0
    attempts: dict[str, list[str]] = field(default_factory=dict)  # "collection/name" -> what each try got
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def session(self) -> ChefSession:
        return ChefSession("admin", self.key, authentication_version="1.3")

    def call(self, method: str, url: str, body: Any = None, retry_for: float = 120, note: str | None = None,
             **kw: Any) -> requests.Response:
        """One API call, repeated while the answer is retryable (errors during an outage)."""
        deadline = time.monotonic() + retry_for
        while True:
            if body is not None:
                kw["json"] = body
            try:
                resp = self.session().request(method, url, timeout=10, **kw)
                if note:
                    self.attempts.setdefault(note, []).append(f"{time.monotonic():.2f}:{resp.status_code}")
                if resp.status_code not in RETRYABLE:
                    return resp
            except (requests.RequestException, InvalidAuthentication) as exc:  # 401: goiardi lost its database
                if note:
                    self.attempts.setdefault(note, []).append(f"{time.monotonic():.2f}:{type(exc).__name__}")
            if time.monotonic() > deadline or self._stop.is_set():
                raise AssertionError(f"{method} {url} kept failing for {retry_for}s")
            self.retries += 1
            time.sleep(0.3)

    def create(self, base: str, collection: str, doc: dict[str, Any], name: str) -> None:
        """POST until acknowledged. A 409 counts only once a GET shows the object: goiardi also
        answers 409 when its existence check fails on a broken database connection (seen right at
        the kill, on the first attempt of a new name)."""
        while True:
            resp = self.call("POST", f"{base}/{collection}", doc, note=f"{collection}/{name}")
            assert resp.status_code in (200, 201, 409), (collection, name, resp.status_code, resp.text[:200])
            if resp.status_code == 409 and self.call("GET", f"{base}/{collection}/{name}").status_code != 200:
                time.sleep(0.3)
                continue
            break
        self.acked.append((collection, name))
        self.ack_times.append(time.monotonic())

    def upload_cookbook(self, base: str, version: str) -> None:
        """Sandbox, upload, commit, then the cookbook version itself."""
        recipe = f"log 'demo {version} {time.time()}'\n".encode()
        checksum = hashlib.md5(recipe).hexdigest()
        resp = self.call("POST", f"{base}/sandboxes", {"checksums": {checksum: None}})
        assert resp.status_code in (200, 201), resp.text[:200]
        sandbox = resp.json()
        upload = sandbox["checksums"][checksum]
        if upload.get("needs_upload"):
            put = self.call("PUT", upload["url"], data=recipe, headers={
                "Content-Type": "application/x-binary",
                "Content-MD5": base64.b64encode(hashlib.md5(recipe).digest()).decode()})
            assert put.status_code in (200, 201, 204), put.text[:200]
        done = self.call("PUT", f"{base}/sandboxes/{sandbox['sandbox_id']}", {"is_completed": True})
        assert done.status_code == 200, done.text[:200]
        manifest = {
            "name": f"demo-{version}", "cookbook_name": "demo", "version": version,
            "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": False,
            "metadata": {"name": "demo", "version": version, "dependencies": {}, "recipes": {"demo::default": ""}},
            "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": checksum,
                         "specificity": "default"}],
        }
        resp = self.call("PUT", f"{base}/cookbooks/demo/{version}", manifest)
        assert resp.status_code in (200, 201), resp.text[:200]
        self.cookbook_files[version] = recipe
        self.acked.append(("cookbooks/demo", version))
        self.ack_times.append(time.monotonic())

    def setup(self) -> None:
        resp = self.call("POST", f"{self.frontends[0]}/data", {"name": "items"})
        assert resp.status_code in (201, 409), resp.text[:200]

    def one_round(self, i: int) -> None:
        base = self.frontends[i % len(self.frontends)]
        self.create(base, "nodes", {"name": f"node-{i}", "json_class": "Chef::Node", "chef_type": "node",
                                    "chef_environment": "_default", "run_list": [], "normal": {"round": i}},
                    f"node-{i}")
        self.create(base, "roles", {"name": f"role-{i}", "json_class": "Chef::Role", "chef_type": "role",
                                    "description": "", "run_list": [], "default_attributes": {},
                                    "override_attributes": {}, "env_run_lists": {}}, f"role-{i}")
        self.create(base, "environments", {"name": f"env-{i}", "json_class": "Chef::Environment",
                                           "chef_type": "environment", "description": "", "cookbook_versions": {},
                                           "default_attributes": {}, "override_attributes": {}}, f"env-{i}")
        self.create(base, "data/items", {"id": f"item-{i}", "round": i}, f"item-{i}")
        if i % 10 == 0:
            self.upload_cookbook(base, f"0.1.{i}")

    def start(self) -> ChefClient:
        def run() -> None:
            i = 0
            while not self._stop.is_set():
                try:
                    self.one_round(i)
                except AssertionError:
                    if self._stop.is_set():
                        return
                    raise
                i += 1

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def wait_acks(self, count: int, timeout: float = 120) -> None:
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            assert self._thread is not None and self._thread.is_alive(), "the Chef client stopped"
            assert time.monotonic() < deadline, f"no {count} acknowledgements within {timeout}s"
            time.sleep(0.1)

    def longest_gap(self, since: float) -> float:
        times = [t for t in self.ack_times if t >= since - 5]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def missing_through(self, base: str) -> list[str]:
        """Acknowledged objects a frontend cannot read back (cookbook files compared byte for byte)."""
        missing = []
        for collection, name in list(self.acked):
            resp = self.call("GET", f"{base}/{collection}/{name}", retry_for=30)
            if resp.status_code != 200:
                missing.append(f"{collection}/{name}: {resp.status_code}")
            elif collection == "cookbooks/demo":
                url = resp.json()["recipes"][0]["url"]
                content = self.call("GET", url, retry_for=30).content
                if content != self.cookbook_files[name]:
                    missing.append(f"{collection}/{name}: recipe differs")
        return missing

    def unsearchable_through(self, base: str) -> list[str]:
        """Acknowledged nodes, roles, environments and data bag items a search does not find."""
        indexes = {"nodes": "node", "roles": "role", "environments": "environment", "data/items": "items"}
        wanted: dict[str, set[str]] = {}
        for collection, name in list(self.acked):
            if collection in indexes:
                wanted.setdefault(indexes[collection], set()).add(name)
        missing = []
        for index, names in wanted.items():
            field_name = "id" if index == "items" else "name"
            prefix = next(iter(names)).split("-")[0]
            resp = self.call("GET", f"{base}/search/{index}", params={"q": f"{field_name}:{prefix}-*", "rows": 100000},
                             retry_for=30)
            assert resp.status_code == 200, resp.text[:200]
            rows = resp.json()["rows"]
            found = {(r.get("raw_data") or r).get(field_name) if index == "items" else r.get("name") for r in rows}
            missing += [f"{index}:{n}" for n in sorted(names - found)]
        return missing
