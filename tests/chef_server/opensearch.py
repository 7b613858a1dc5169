"""A throw-away single-node OpenSearch (answering as Elasticsearch 7.10.2) for the frontend's search tests,
from the launcher scripts/setup installs (or this checkout's build of search/)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

JAVA = "/usr/bin/java"
REPO = Path(__file__).resolve().parents[2]
LAUNCHERS = [  # (jar, lib directory)
    (Path("/opt/chef-backend/embedded/lib/opensearch/chef-backend-search.jar"),
     Path("/opt/chef-backend/embedded/lib/opensearch/lib")),
    (REPO / "search/target/chef-backend-search-1.jar", REPO / "search/target/lib"),
]


def launcher() -> tuple[Path, Path] | None:
    if not Path(JAVA).exists():
        return None
    return next(((jar, lib) for jar, lib in LAUNCHERS if jar.is_file() and lib.is_dir()), None)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except (OSError, urllib.error.URLError):
        return False


class OpenSearch:
    """One node on HOST:9200 (transport 9300), data in `home`; start() waits until it answers."""

    def __init__(self, host: str, home: Path):
        self.host, self.home = host, home
        self.url = f"http://{host}:9200"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        found = launcher()
        assert found is not None, "no search launcher"
        jar, lib = found
        config = self.home / "config"
        config.mkdir(parents=True, exist_ok=True)
        settings = {"cluster.name": "chef-server-fe-test", "node.name": "fe-test", "network.host": self.host,
                    "http.port": 9200, "transport.port": 9300, "discovery.type": "single-node",
                    "path.home": str(self.home), "path.data": str(self.home / "data"),
                    "path.logs": str(self.home / "logs"), "compatibility.override_main_response_version": True,
                    "node.processors": 1}
        (config / "opensearch.yml").write_text(json.dumps(settings))
        (config / "log4j2.properties").write_text(
            "status = error\nappender.console.type = Console\nappender.console.name = console\n"
            "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = %m%n\n"
            "rootLogger.level = warn\nrootLogger.appenderRef.console.ref = console\n")
        log = (self.home / "out.log").open("ab")
        self.proc = subprocess.Popen(
            [JAVA, "-Xms256m", "-Xmx256m", "-Dio.netty.noUnsafe=true", "-Dlog4j2.disable.jmx=true",
             f"-Djava.io.tmpdir={self.home}", "-cp", f"{jar}:{lib}/*", "io.chefbackend.search.SearchNode",
             str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 180
        while not answers(self.url + "/_cluster/health?wait_for_status=yellow&timeout=5s"):
            assert self.proc.poll() is None, (self.home / "out.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "OpenSearch did not start within 180 s"
            time.sleep(1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


@contextmanager
def running(host: str, prefix: str) -> Iterator[OpenSearch]:
    """A throw-away single-node engine on `host` for the block (the test is skipped without a
    launcher or Java, or when something already answers there)."""
    if launcher() is None:
        pytest.skip("no search launcher built (scripts/setup, or mvn -B -q -f search/pom.xml package) or no Java")
    if answers(f"http://{host}:9200/"):
        pytest.skip(f"something already answers on {host}:9200")
    home = Path(tempfile.mkdtemp(prefix=prefix))
    node = OpenSearch(host, home)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)
