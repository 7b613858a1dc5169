"""The search service (the seed's `elasticsearch`): one search node per backend.

By default an embedded OpenSearch 2.19 node: scripts/setup builds it from Maven Central
(search/pom.xml: the OpenSearch server jar, its Netty4 and Reindex plugins, and a small launcher,
search/src/.../SearchNode.java) into /opt/chef-backend/embedded/lib/opensearch.
`compatibility.override_main_response_version` makes `GET /` report 7.10.2, the Elasticsearch
major that unmodified Chef frontends accept. Instead, `elasticsearch.distribution_dir` may point at
an operator-installed distribution: OpenSearch 2.x, Elasticsearch 7.x, or Elasticsearch 6.8 (the
engine Chef Backend 3.x shipped), configured and supervised the same way.

The node runs as chef-backend, named after the node's GUID, on the publish address (HTTP on
elasticsearch.port, transport on 9300), finding the others through the members' addresses.
"""

from __future__ import annotations

import json
import os
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chef_backend.config.settings import ConfigError, Settings
from chef_backend.host import fsutil
from chef_backend.host.netloc import host_port
from chef_backend.host.paths import NodePaths
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


@dataclass(frozen=True)
class Engine:
    """What runs as the search service: the embedded OpenSearch node, or the operator's
    distribution in elasticsearch.distribution_dir."""

    product: str  # "opensearch", "elasticsearch", or "unknown" (a directory holding neither)
    version: str | None
    distribution: Path | None  # None for the embedded node

    def _number(self, index: int) -> int:
        try:
            return int((self.version or "").split(".")[index])
        except (ValueError, IndexError):
            return 0

    @property
    def major(self) -> int:
        return self._number(0)

    @property
    def zen(self) -> bool:
        """Elasticsearch 6's Zen discovery: no bootstrapping, but a quorum to keep set."""
        return self.product == "elasticsearch" and self.major == 6

    @property
    def supported(self) -> bool:
        if self.product == "opensearch":
            return self.distribution is None or self.major == 2
        return self.product == "elasticsearch" and (self.major == 7 or (self.major, self._number(1)) == (6, 8))

    @property
    def config_file(self) -> str:
        return f"{self.product}.yml"

    def roles(self) -> dict[str, Any]:
        if self.product == "opensearch":
            return {"node.roles": ["cluster_manager", "data"]}
        if self.major == 7 and self._number(1) >= 9:
            return {"node.roles": ["master", "data"]}
        return {"node.master": True, "node.data": True}  # before node.roles existed

    @property
    def manager_api(self) -> str:
        """The _cat API naming the elected cluster manager."""
        return "/_cat/cluster_manager?h=node" if self.product == "opensearch" else "/_cat/master?h=node"


def engine(settings: Settings) -> Engine:
    """The search engine this node is configured to run."""
    dist = settings["elasticsearch.distribution_dir"]
    if not dist:
        return Engine("opensearch", _jar_version(lib_dir(settings) / "lib", "opensearch"), None)
    for product in ("opensearch", "elasticsearch"):
        if (Path(dist) / "bin" / product).is_file():
            return Engine(product, _jar_version(Path(dist) / "lib", product), Path(dist))
    return Engine("unknown", None, Path(dist))


def _jar_version(lib: Path, product: str) -> str | None:
    """The version in the name of the server jar (opensearch-2.19.6.jar, elasticsearch-6.8.23.jar)."""
    jars = sorted(lib.glob(f"{product}-[0-9]*.jar"))
    return jars[0].name.removeprefix(f"{product}-").removesuffix(".jar") if jars else None


def quorum(members: int) -> int:
    return members // 2 + 1


def home(paths: NodePaths) -> Path:
    return paths.var / "elasticsearch"


def config_dir(paths: NodePaths) -> Path:
    return home(paths) / "config"


def data_dir(paths: NodePaths) -> Path:
    return home(paths) / "data"


def heap_mb(settings: Settings) -> int:
    """elasticsearch.heap_size, or the original's rule (2.1 and later): a third of the memory, here at
    least 1 GB and at most 31 GB (beyond that the JVM loses compressed pointers)."""
    if settings["elasticsearch.heap_size"]:
        return int(settings["elasticsearch.heap_size"])
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1048576
    return min(max(total_mb // 3, 1024), 31744)


def render_config(settings: Settings, secrets: Secrets, guid: str, members: list[str], bootstrap: bool,
                  eng: Engine) -> str:
    """The engine's YAML settings (JSON is YAML). `bootstrap` only when this node forms a new
    search cluster."""
    seeds = [host_port(m, TRANSPORT_PORT) for m in members]
    doc: dict[str, Any] = {
        "cluster.name": secrets.elasticsearch_cluster_name,
        "node.name": guid,
        **eng.roles(),
        "network.host": settings.publish_address,
        **({"network.bind_host": [settings.publish_address, settings.local_address],
            "network.publish_host": settings.publish_address} if settings.local_address else {}),
        "http.port": settings["elasticsearch.port"],
        "transport.port": TRANSPORT_PORT,
        "action.auto_create_index": False,
    }
    # Besides the seeds here, the file unicast_hosts.txt, which the engine re-reads on every
    # discovery round and the leader manager keeps equal to the cluster's members (joins, remove-node).
    if eng.zen:
        doc.update({
            "discovery.zen.ping.unicast.hosts": seeds,
            "discovery.zen.hosts_provider": "file",
            # A majority of the members known now; the leader manager keeps the cluster-wide
            # setting right as members come and go (Elasticsearch 6 cannot work that out itself).
            "discovery.zen.minimum_master_nodes": 1 if bootstrap else quorum(len(members)),
        })
    else:
        doc.update({"discovery.seed_hosts": seeds, "discovery.seed_providers": "file"})
        if bootstrap:
            key = "initial_cluster_manager_nodes" if eng.product == "opensearch" else "initial_master_nodes"
            doc[f"cluster.{key}"] = [guid]
    if eng.product == "opensearch":
        doc["compatibility.override_main_response_version"] = True
    return json.dumps(doc, indent=2) + "\n"


def seed_hosts_file(paths: NodePaths) -> Path:
    return config_dir(paths) / "unicast_hosts.txt"


def write_seed_hosts(paths: NodePaths, members: list[str]) -> bool:
    """unicast_hosts.txt: every member's transport address; True if it changed."""
    text = "".join(host_port(m, TRANSPORT_PORT) + "\n" for m in sorted(set(members)))
    try:
        if seed_hosts_file(paths).read_text() == text:
            return False
    except OSError:
        pass
    return fsutil.write_file(seed_hosts_file(paths), text, mode=0o644)


def write_config(settings: Settings, paths: NodePaths, secrets: Secrets, guid: str, members: list[str],
                 bootstrap: bool) -> None:
    eng = engine(settings)
    fsutil.make_dir(home(paths), USER, 0o755)  # the leader manager passes through to config/
    fsutil.make_dir(data_dir(paths), USER, 0o750)
    # The leader manager (leaderl.username) maintains unicast_hosts.txt in here.
    fsutil.make_dir(config_dir(paths), USER, 0o770)
    fsutil.chown(config_dir(paths), USER, settings["leaderl.username"])
    yml_doc = json.loads(render_config(settings, secrets, guid, members, bootstrap, eng))
    # path.* settings: the environment needs them before it reads the rest.
    yml_doc.update({"path.home": str(home(paths)), "path.data": str(data_dir(paths)),
                    "path.logs": str(settings.path("elasticsearch.log_directory"))})
    for other in {"opensearch.yml", "elasticsearch.yml"} - {eng.config_file}:
        (config_dir(paths) / other).unlink(missing_ok=True)
    # Elasticsearch 6: the leader manager keeps minimum_master_nodes in here right (write_zen_quorum).
    group, mode = (settings["leaderl.username"], 0o660) if eng.zen else (USER, 0o640)
    fsutil.write_file(config_dir(paths) / eng.config_file, json.dumps(yml_doc, indent=2) + "\n", mode=mode,
                      owner=USER, group=group)
    fsutil.write_file(config_dir(paths) / "log4j2.properties", LOG4J, mode=0o644)
    write_seed_hosts(paths, members)
    fsutil.chown(seed_hosts_file(paths), settings["leaderl.username"])
    if eng.distribution is not None:
        # A distribution reads its JVM flags from jvm.options in the config directory.
        fsutil.write_file(config_dir(paths) / "jvm.options", "\n".join(jvm_options(settings, paths)) + "\n",
                          mode=0o644)


def configured_members(paths: NodePaths) -> list[str]:
    """The members the search node looks for (addresses only): unicast_hosts.txt, which the leader
    manager keeps current, else the seeds of the configuration file."""
    try:
        hosts = seed_hosts_file(paths).read_text().split()
    except OSError:
        hosts = []
    for name in ("opensearch.yml", "elasticsearch.yml"):
        try:
            doc = json.loads((config_dir(paths) / name).read_text())
        except (OSError, ValueError):
            continue
        hosts = hosts or doc.get("discovery.seed_hosts") or doc.get("discovery.zen.ping.unicast.hosts") or []
    return [h.rsplit(":", 1)[0] for h in hosts]


def lib_dir(settings: Settings) -> Path:
    return Path(settings["elasticsearch.lib_dir"])


def version(settings: Settings) -> str | None:
    """What runs, e.g. "opensearch 2.19.6" or "elasticsearch 6.8.23"."""
    eng = engine(settings)
    return f"{eng.product} {eng.version}" if eng.version else None


def check_installed(settings: Settings) -> None:
    eng = engine(settings)
    if eng.distribution is not None:
        found = "neither bin/opensearch nor bin/elasticsearch" if eng.product == "unknown" else \
            f"{eng.product} {eng.version or '(version unknown: no server jar in lib/)'}"
        if not eng.supported:
            raise ConfigError(f"elasticsearch.distribution_dir {eng.distribution} holds {found}; an OpenSearch 2.x, "
                              "Elasticsearch 7.x or Elasticsearch 6.8 distribution is expected")
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
    eng = engine(settings)
    if eng.distribution is not None:
        java_home = shlex.quote(str(Path(os.path.realpath(settings["elasticsearch.java"])).parent.parent))
        conf = shlex.quote(str(config_dir(paths)))
        if eng.product == "opensearch":
            env = f"OPENSEARCH_PATH_CONF={conf} OPENSEARCH_JAVA_HOME={java_home}"
        else:  # JAVA_HOME up to 7.11, ES_JAVA_HOME since
            env = (f"ES_PATH_CONF={conf} ES_JAVA_HOME={java_home} JAVA_HOME={java_home} "
                   f"ES_TMPDIR={shlex.quote(str(home(paths) / 'tmp'))}")
        command = f"env {env} {shlex.quote(str(eng.distribution / 'bin' / eng.product))}"
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
    answer = _get(settings, "/_cluster/health?local=true", timeout)
    try:
        return json.loads(answer) if answer is not None else None
    except ValueError:
        return None


def _get(settings: Settings, path: str, timeout: float) -> bytes | None:
    url = f"http://{host_port(settings.publish_address, settings['elasticsearch.port'])}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except (OSError, urllib.error.URLError):
        return None


def cluster_manager(settings: Settings, timeout: float = 2.0) -> str | None:
    """The node name (GUID) of the search cluster's elected manager, as this node sees it."""
    answer = _get(settings, engine(settings).manager_api, timeout)
    if answer is None:
        return None
    return answer.decode(errors="replace").strip() or None


def cluster_nodes(settings: Settings, timeout: float = 2.0) -> set[str] | None:
    """The node names (GUIDs) in the search cluster as this node sees it; None when it does not answer."""
    answer = _get(settings, "/_cat/nodes?h=name", timeout)
    return None if answer is None else set(answer.decode(errors="replace").split())


def write_zen_quorum(paths: NodePaths, members: int) -> bool:
    """Elasticsearch 6: keep this node's own minimum_master_nodes, which it goes by until it has
    joined a cluster (after a restart, say), at a majority of the members; True if it changed.
    Rewritten in place: the leader manager may write the file but could not give a new one the
    engine's owner."""
    path = config_dir(paths) / "elasticsearch.yml"
    doc = json.loads(path.read_text())
    if doc.get("discovery.zen.minimum_master_nodes") == quorum(members):
        return False
    doc["discovery.zen.minimum_master_nodes"] = quorum(members)
    with path.open("r+") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
        f.truncate()
    return True


def set_zen_quorum(settings: Settings, members: int, timeout: float = 2.0) -> int | None:
    """Elasticsearch 6: set discovery.zen.minimum_master_nodes cluster-wide to a majority of the
    members once that many master-eligible nodes are in (Elasticsearch refuses a larger value).
    Returns the value set, None when nothing changed."""
    want = quorum(members)
    current = _get(settings, "/_cluster/settings?flat_settings=true", timeout)
    roles = _get(settings, "/_cat/nodes?h=node.role", timeout)
    if current is None or roles is None:
        return None
    try:
        have = json.loads(current).get("persistent", {}).get("discovery.zen.minimum_master_nodes")
    except ValueError:
        return None
    if have == str(want) or sum("m" in line for line in roles.decode().split()) < want:
        return None
    body = json.dumps({"persistent": {"discovery.zen.minimum_master_nodes": want}}).encode()
    req = urllib.request.Request(f"http://{host_port(settings.publish_address, settings['elasticsearch.port'])}"
                                 "/_cluster/settings", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return want
    except (OSError, urllib.error.URLError):
        return None
