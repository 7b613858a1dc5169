"""`chef-server-ctl reconfigure` for real: runit, HAProxy to a (stand-in) leader, the API, nginx's TLS endpoint
(the test's Python may live where the opscode user cannot reach: the API runs as root here, opscode_erchef['user'])."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
import requests
import urllib3

from .conftest import API_HOST as HOST

pytestmark = pytest.mark.integration

SERVER_RB = """\
fqdn "chef-test.example"
use_chef_backend true
chef_backend_members ["{backend}"]
haproxy['listen'] = '{host}'
haproxy['local_postgresql_port'] = 15432
haproxy['local_elasticsearch_port'] = 19200
haproxy['remote_postgresql_port'] = {pg_port}
postgresql['external'] = true
postgresql['vip'] = '{host}'
postgresql['db_superuser'] = 'postgres'
postgresql['db_superuser_password'] = 'trusted-anyway'
opscode_erchef['db_name'] = 'reconfigured_chef'
opscode_erchef['port'] = 18000
opscode_erchef['user'] = 'root'
nginx['ssl_port'] = 18443
nginx['non_ssl_port'] = 18080
"""


class _Leader(http.server.BaseHTTPRequestHandler):
    """What leaderl answers on the leader: 200 on /leader."""

    def do_GET(self):
        self.send_response(200 if self.path == "/leader" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def leader(postgres):
    server = http.server.ThreadingHTTPServer((postgres.host, 7331), _Leader)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


def _needs_tools():
    for tool in ("/usr/bin/runsvdir", "/usr/sbin/haproxy", "/usr/sbin/nginx"):
        if not os.path.exists(tool):
            pytest.skip(f"needs {tool} (Debian packages runit, haproxy, nginx)")


def ctl(root: str, *args: str) -> subprocess.CompletedProcess:
    """chef-server-ctl for the frontend whose files are under `root` (its /etc/opscode and /var/opt/opscode)."""
    env = dict(os.environ)
    env.pop("CHEF_SERVER_CONFIG", None)
    if args[0] == "reconfigure":
        args = (*args, "--config", f"{root}/etc/opscode/chef-server.rb")
    return subprocess.run([sys.executable, "-m", "chef_server.ctl.main", "--dir", f"{root}/var/opt/opscode", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_reconfigure_gives_a_running_frontend(postgres, leader):
    _needs_tools()
    root = tempfile.mkdtemp(prefix="chef-fe-root-")
    os.chmod(root, 0o755)  # HAProxy's user reaches its files under it
    os.makedirs(f"{root}/etc/opscode")
    with open(f"{root}/etc/opscode/chef-server.rb", "w") as fh:
        fh.write(SERVER_RB.format(backend=postgres.host, host=HOST, pg_port=postgres.port))
    try:
        r = ctl(root, "reconfigure", "--tries", "5")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "created database reconfigured_chef" in r.stdout
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        status = requests.get(f"https://{HOST}:18443/_status", verify=False, timeout=10)
        assert status.status_code == 200 and status.json()["status"] == "pong"
        plain = requests.get(f"http://{HOST}:18080/_status", allow_redirects=False, timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        assert oct(os.stat(f"{root}/etc/opscode/pivotal.pem").st_mode & 0o777) == "0o600"
        # operators' commands reach the API this reconfigure started, signed with its superuser key
        r = ctl(root, "org-create", "reconf-org", "Reconfigured")
        assert r.returncode == 0 and "PRIVATE KEY" in r.stdout, r.stderr
        r = ctl(root, "status")
        lines = r.stdout.splitlines()
        assert [line.split(":")[:2] for line in lines[:3]] == [
            ["run", " haproxy"], ["run", " chef-server-api"], ["run", " nginx"]], r.stdout
        # the stand-in leader has no search engine behind HAProxy's search port: status says so and fails
        assert lines[3] == "chef_backend_postgresql: UP backend0", r.stdout
        # HAProxy takes the search server out at each refused connection (the indexer's, retrying)
        # and back at its next /leader check a quarter second later: either may show.
        assert lines[4] in ("chef_backend_elasticsearch: UP backend0",
                            "chef_backend_elasticsearch: UP (none)"), r.stdout
        assert lines[5:-1] == ["leader: backend0", "chef-server-api: ok (chef_sql pong)"], r.stdout
        assert lines[-1].startswith("search: unreachable") and r.returncode == 1, r.stdout
        r = ctl(root, "reconfigure", "--tries", "5")  # again: nothing to create, everything still runs
        assert r.returncode == 0 and "created database" not in r.stdout, r.stderr
        assert "reconf-org" in ctl(root, "org-list").stdout.split()
    finally:
        ctl(root, "stop")
        shutil.rmtree(root, ignore_errors=True)
