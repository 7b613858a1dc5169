"""The search service (the seed's `elasticsearch`): one embedded OpenSearch 2.19 node per backend.

scripts/setup builds it from Maven Central (search/pom.xml: the OpenSearch server jar, its Netty4
and Reindex plugins, and a small launcher, search/src/.../SearchNode.java) into
/opt/chef-backend/embedded/lib/opensearch. `compatibility.override_main_response_version` makes
`GET /` report 7.10.2, the Elasticsearch major that unmodified Chef frontends accept. The node runs
as chef-backend, named after the node's GUID, on the publish address (HTTP on elasticsearch.port,
transport on 9300), finding the others through the members' addresses.
"""

from __future__ import annotations

import json
import os
import shlex
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chef_backend import fsutil
from chef_backend.config.settings import ConfigError, Settings
from chef_backend.paths import NodePaths
from chef_backend.secrets import Secrets
from chef_backend.services.etcd import USER
from chef_backend.supervision.runit import CHPST, ServiceSpec

TRANSPORT_PORT = 9300
LAUNCHER = "io.chefbackend.search.SearchNode"

LOG4J = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %marker%m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


def home(paths: NodePaths) -> Path:
    return paths.var / "elasticsearch"


def config_dir(paths: NodePaths) -> Path:
    return home(paths) / "config"


def data_dir(paths: NodePaths) -> Path:
    return home(paths) / "data"


def heap_mb(settings: Settings) -> int:
    """elasticsearch.heap_size, or the original's rule: a quarter of the memory, at least 1 GB
    (capped where the JVM loses compressed pointers)."""
    if settings["elasticsearch.heap_size"]:
        return int(settings["elasticsearch.heap_size"])
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1048576
    return min(max(total_mb // 4, 1024), 31744)


def render_config(settings: Settings, secrets: Secrets, guid: str, members: list[str], bootstrap: bool) -> str:
    """opensearch.yml (JSON is YAML). `bootstrap` only when this node forms a new search cluster."""
    doc: dict[str, Any] = {
        "cluster.name": secrets.elasticsearch_cluster_name,
        "node.name": guid,
        "node.roles": ["cluster_manager", "data"],
        "network.host": settings.publish_address,
        "http.port": settings["elasticsearch.port"],
        "transport.port": TRANSPORT_PORT,
        "discovery.seed_hosts": [f"{m}:{TRANSPORT_PORT}" for m in members],
        # ...and unicast_hosts.txt, which OpenSearch re-reads on every discovery round and the leader
        # manager keeps equal to the cluster's members (joins, remove-node).
        "discovery.seed_providers": "file",
        "compatibility.override_main_response_version": True,
        "action.auto_create_index": False,
    }
    if bootstrap:
        doc["cluster.initial_cluster_manager_nodes"] = [guid]
    return json.dumps(doc, indent=2) + "\n"


def seed_hosts_file(paths: NodePaths) -> Path:
    return config_dir(paths) / "unicast_hosts.txt"


def write_seed_hosts(paths: NodePaths, members: list[str]) -> bool:
    """unicast_hosts.txt: every member's transport address; True if it changed."""
    text = "".join(f"{m}:{TRANSPORT_PORT}\n" for m in sorted(set(members)))
    try:
        if seed_hosts_file(paths).read_text() == text:
            return False
    except OSError:
        pass
    return fsutil.write_file(seed_hosts_file(paths), text, mode=0o644)


def write_config(settings: Settings, paths: NodePaths, secrets: Secrets, guid: str, members: list[str],
                 bootstrap: bool) -> None:
    fsutil.make_dir(home(paths), USER, 0o755)  # the leader manager passes through to config/
    fsutil.make_dir(data_dir(paths), USER, 0o750)
    # The leader manager (leaderl.username) maintains unicast_hosts.txt in here.
    fsutil.make_dir(config_dir(paths), USER, 0o770)
    fsutil.chown(config_dir(paths), USER, settings["leaderl.username"])
    yml = render_config(settings, secrets, guid, members, bootstrap)
    # path.* settings: the environment needs them before it reads the rest.
    yml_doc = json.loads(yml)
    yml_doc.update({"path.home": str(home(paths)), "path.data": str(data_dir(paths)),
                    "path.logs": str(settings.path("elasticsearch.log_directory"))})
    fsutil.write_file(config_dir(paths) / "opensearch.yml", json.dumps(yml_doc, indent=2) + "\n", mode=0o640,
                      owner=USER, group=USER)
    fsutil.write_file(config_dir(paths) / "log4j2.properties", LOG4J, mode=0o644)
    write_seed_hosts(paths, members)
    fsutil.chown(seed_hosts_file(paths), settings["leaderl.username"])
    if settings["elasticsearch.distribution_dir"]:
        # A distribution reads its JVM flags from jvm.options in the config directory.
        fsutil.write_file(config_dir(paths) / "jvm.options", "\n".join(jvm_options(settings, paths)) + "\n",
                          mode=0o644)


def configured_members(paths: NodePaths) -> list[str]:
    """The seed hosts in this node's current opensearch.yml (addresses only)."""
    try:
        doc = json.loads((config_dir(paths) / "opensearch.yml").read_text())
    except (OSError, ValueError):
        return []
    return [h.rsplit(":", 1)[0] for h in doc.get("discovery.seed_hosts", [])]


def lib_dir(settings: Settings) -> Path:
    return Path(settings["elasticsearch.lib_dir"])


def version(settings: Settings) -> str | None:
    """The OpenSearch version that runs (from its server jar's name)."""
    dist = settings["elasticsearch.distribution_dir"]
    jars = sorted((Path(dist) / "lib" if dist else lib_dir(settings) / "lib").glob("opensearch-[0-9]*.jar"))
    return jars[0].name.removeprefix("opensearch-").removesuffix(".jar") if jars else None


def check_installed(settings: Settings) -> None:
    dist = settings["elasticsearch.distribution_dir"]
    if dist:
        if not (Path(dist) / "bin" / "opensearch").is_file():
            raise ConfigError(f"elasticsearch.distribution_dir {dist} holds no bin/opensearch "
                              "(an OpenSearch 2.x distribution is expected)")
    elif not (lib_dir(settings) / "chef-backend-search.jar").is_file():
        raise ConfigError(f"the search service is not installed in {lib_dir(settings)} (run scripts/setup, "
                          "which builds it with Maven), or set elasticsearch.enable = false")
    if not Path(settings["elasticsearch.java"]).exists():
        raise ConfigError(f"no Java at {settings['elasticsearch.java']} (elasticsearch.java); install OpenJDK 17")


def jvm_options(settings: Settings, paths: NodePaths) -> list[str]:
    heap = heap_mb(settings)
    jvm = [f"-Xms{heap}m", f"-Xmx{heap}m"]
    if settings["elasticsearch.new_size"]:
        jvm.append(f"-Xmn{int(settings['elasticsearch.new_size'])}m")
    jvm += ["-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true", "-Dlog4j2.disable.jmx=true",
            "-Djava.io.tmpdir=" + str(home(paths) / "tmp"), "-XX:+UseG1GC", "-Dfile.encoding=UTF-8"]
    return jvm + shlex.split(settings["elasticsearch.java_opts"] or "")


def service_spec(settings: Settings, paths: NodePaths) -> ServiceSpec:
    prepare = f"{CHPST} -u {USER}:{USER} mkdir -p {shlex.quote(str(home(paths) / 'tmp'))}\n"
    dist = settings["elasticsearch.distribution_dir"]
    if dist:
        java_home = Path(os.path.realpath(settings["elasticsearch.java"])).parent.parent
        command = (f"env OPENSEARCH_PATH_CONF={shlex.quote(str(config_dir(paths)))} "
                   f"OPENSEARCH_JAVA_HOME={shlex.quote(str(java_home))} "
                   f"{shlex.quote(str(Path(dist) / 'bin' / 'opensearch'))}")
    else:
        classpath = f"{lib_dir(settings)}/chef-backend-search.jar:{lib_dir(settings)}/lib/*"
        jvm = jvm_options(settings, paths)
        command = (f"{shlex.quote(settings['elasticsearch.java'])} {' '.join(shlex.quote(a) for a in jvm)} "
                   f"-cp {shlex.quote(classpath)} {LAUNCHER} {shlex.quote(str(config_dir(paths)))}")
    run = f"#!/bin/sh\nexec 2>&1\n{prepare}exec {CHPST} -e ./env -u {USER}:{USER} {command}\n"
    return ServiceSpec(
        name="elasticsearch",
        run_script=run,
        log_dir=settings.path("elasticsearch.log_directory") or Path("/dev/null"),
        log_user=USER,
        file_maxbytes=settings["elasticsearch.log_rotation.file_maxbytes"],
        num_to_keep=settings["elasticsearch.log_rotation.num_to_keep"],
        environment=settings["elasticsearch.environment"],
    )


def health(settings: Settings, timeout: float = 1.0) -> dict[str, Any] | None:
    """This node's view of the search cluster (`_cluster/health`), None when it does not answer."""
    url = f"http://{settings.publish_address}:{settings['elasticsearch.port']}/_cluster/health?local=true"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def cluster_manager(settings: Settings, timeout: float = 2.0) -> str | None:
    """The node name (GUID) of the search cluster's elected manager, as this node sees it."""
    url = f"http://{settings.publish_address}:{settings['elasticsearch.port']}/_cat/cluster_manager?h=node"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode().strip() or None
    except (OSError, urllib.error.URLError):
        return None
