"""Fixtures of the frontend's integration tests: a real PostgreSQL and the real API server, as processes."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest
import requests
from chefsessionlib import ChefSession

from .pg import Postgres

API_HOST = os.environ.get("CHEF_FE_TEST_API_HOST", "127.0.0.21")
API_PORT = 8421
NO_SEARCH = "http://127.0.0.1:1"  # frontends of tests without a search engine index into nothing (refused at once)


def _need_postgres() -> None:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("needs the postgres user (Debian package postgresql)")
    if os.geteuid() != 0:
        pytest.skip("starts PostgreSQL as the postgres user: run as root")


@pytest.fixture(scope="session")
def postgres():
    _need_postgres()
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@dataclass
class Frontend:
    url: str
    pivotal_key_path: str
    env: dict
    proc: subprocess.Popen

    @property
    def pivotal_key(self) -> str:
        with open(self.pivotal_key_path) as fh:
            return fh.read()


def start_frontend(pg: Postgres, workdir: str, port: int = API_PORT, workers: int = 2,
                   search_url: str = NO_SEARCH, host: str = API_HOST, **settings: str) -> Frontend:
    """The API server as a process; `settings` are more CHEF_SERVER_* settings (lower-case names)."""
    env = {**os.environ, "CHEF_SERVER_DB_CONNINFO": pg.dsn(), "CHEF_SERVER_LISTEN_HOST": host,
           "CHEF_SERVER_LISTEN_PORT": str(port), "CHEF_SERVER_WORKERS": str(workers),
           "CHEF_SERVER_PIVOTAL_KEY_PATH": os.path.join(workdir, "pivotal.pem"), "CHEF_SERVER_DB_POOL_SIZE": "4",
           "CHEF_SERVER_SEARCH_URL": search_url,
           **{f"CHEF_SERVER_{key.upper()}": value for key, value in settings.items()}}
    log = open(os.path.join(workdir, f"api-{port}.log"), "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "chef_server.server"], env=env, stdout=log, stderr=log,
                            start_new_session=True)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/_status", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            with open(os.path.join(workdir, f"api-{port}.log")) as fh:
                raise RuntimeError(f"API server did not start: {fh.read()}")
        time.sleep(0.2)
    return Frontend(url=url, pivotal_key_path=env["CHEF_SERVER_PIVOTAL_KEY_PATH"], env=env, proc=proc)


def stop_frontend(frontend: Frontend) -> None:
    if frontend.proc.poll() is None:
        os.killpg(frontend.proc.pid, signal.SIGTERM)
        try:
            frontend.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(frontend.proc.pid, signal.SIGKILL)
            frontend.proc.wait()


@pytest.fixture(scope="session")
def frontend(postgres):
    workdir = tempfile.mkdtemp(prefix="chef-fe-api-")
    fe = start_frontend(postgres, workdir)
    yield fe
    stop_frontend(fe)
    shutil.rmtree(workdir, ignore_errors=True)


def session(key_pem: str, user: str = "pivotal", version: str = "1.3", api: int = 1) -> ChefSession:
    """A signed client (chefsessionlib) as `user`."""
    return ChefSession(user, key_pem, authentication_version=version, api_version=api)


@pytest.fixture(scope="module")
def pivotal(frontend):
    """The superuser's signed client on the shared frontend."""
    return session(frontend.pivotal_key)
