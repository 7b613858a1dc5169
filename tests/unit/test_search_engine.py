"""The search engines elasticsearch.distribution_dir may name, and each one's configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chef_backend.config.settings import ConfigError, Settings, load_text
from chef_backend.host.paths import NodePaths
from chef_backend.secrets import Secrets
from chef_backend.services import elasticsearch
from chef_backend.services.elasticsearch import Engine

GUID = "a" * 32
MEMBERS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def distribution(tmp_path: Path, product: str, version: str) -> Path:
    home = tmp_path / f"{product}-{version}"
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "bin" / product).write_text("#!/bin/sh\n")
    (home / "lib" / f"{product}-{version}.jar").write_text("")
    (home / "lib" / f"{product}-core-{version}.jar").write_text("")  # not the server jar
    return home


def settings(dist: Path | None) -> Settings:
    text = "publish_address '10.0.0.1'\nelasticsearch.java = '/bin/sh'\n"
    return load_text(text + (f"elasticsearch.distribution_dir = '{dist}'\n" if dist else ""))


def rendered(eng: Engine, bootstrap: bool, members: list[str] = MEMBERS) -> dict:
    return json.loads(elasticsearch.render_config(settings(None), Secrets.generate(), GUID, members, bootstrap, eng))


@pytest.mark.parametrize(("product", "version"), [("opensearch", "2.19.6"), ("elasticsearch", "7.10.2"),
                                                  ("elasticsearch", "7.17.29"), ("elasticsearch", "6.8.23")])
def test_a_supported_distribution_is_recognised(tmp_path: Path, product: str, version: str) -> None:
    s = settings(distribution(tmp_path, product, version))
    eng = elasticsearch.engine(s)
    assert (eng.product, eng.version, eng.supported) == (product, version, True)
    elasticsearch.check_installed(s)
    assert elasticsearch.version(s) == f"{product} {version}"


@pytest.mark.parametrize(("product", "version"), [("opensearch", "1.3.20"), ("elasticsearch", "8.14.1"),
                                                  ("elasticsearch", "6.7.2"), ("elasticsearch", "5.6.16")])
def test_an_unsupported_distribution_is_refused_with_what_it_holds(tmp_path: Path, product: str,
                                                                   version: str) -> None:
    with pytest.raises(ConfigError, match=f"holds {product} {version}; an OpenSearch 2.x"):
        elasticsearch.check_installed(settings(distribution(tmp_path, product, version)))


def test_a_directory_without_a_distribution_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds neither bin/opensearch nor bin/elasticsearch"):
        elasticsearch.check_installed(settings(tmp_path))


def test_opensearch_reports_elasticsearch_7_and_bootstraps_by_name() -> None:
    doc = rendered(Engine("opensearch", "2.19.6", None), bootstrap=True)
    assert doc["compatibility.override_main_response_version"] is True
    assert doc["node.roles"] == ["cluster_manager", "data"]
    assert doc["cluster.initial_cluster_manager_nodes"] == [GUID]
    assert doc["discovery.seed_providers"] == "file"
    assert "cluster.initial_cluster_manager_nodes" not in rendered(Engine("opensearch", "2.19.6", None), False)


def test_elasticsearch_7_uses_its_own_names() -> None:
    doc = rendered(Engine("elasticsearch", "7.10.2", Path("/d")), bootstrap=True)
    assert doc["node.roles"] == ["master", "data"]
    assert doc["cluster.initial_master_nodes"] == [GUID]
    assert "compatibility.override_main_response_version" not in doc
    old = rendered(Engine("elasticsearch", "7.4.2", Path("/d")), bootstrap=False)
    assert (old["node.master"], old["node.data"]) == (True, True) and "node.roles" not in old


def test_elasticsearch_6_gets_zen_discovery_with_a_majority() -> None:
    eng = Engine("elasticsearch", "6.8.23", Path("/d"))
    first = rendered(eng, bootstrap=True, members=MEMBERS[:1])
    assert first["discovery.zen.minimum_master_nodes"] == 1
    joined = rendered(eng, bootstrap=False)
    assert joined["discovery.zen.minimum_master_nodes"] == 2
    assert joined["discovery.zen.ping.unicast.hosts"] == [f"{m}:9300" for m in MEMBERS]
    assert joined["discovery.zen.hosts_provider"] == "file"
    assert not any(k.startswith(("cluster.initial", "discovery.seed")) for k in joined)
    assert [elasticsearch.quorum(n) for n in range(1, 6)] == [1, 2, 2, 3, 3]


def test_the_zen_quorum_in_a_nodes_configuration_follows_the_members(tmp_path: Path) -> None:
    paths = NodePaths.under(tmp_path)
    yml = elasticsearch.config_dir(paths) / "elasticsearch.yml"
    yml.parent.mkdir(parents=True)
    yml.write_text(json.dumps(rendered(Engine("elasticsearch", "6.8.23", Path("/d")), True, MEMBERS[:1])))
    assert elasticsearch.write_zen_quorum(paths, 3)
    doc = json.loads(yml.read_text())
    assert doc["discovery.zen.minimum_master_nodes"] == 2 and doc["node.name"] == GUID
    assert not elasticsearch.write_zen_quorum(paths, 3)
    assert elasticsearch.write_zen_quorum(paths, 5) and json.loads(yml.read_text())[
        "discovery.zen.minimum_master_nodes"] == 3


def test_the_members_come_from_the_seed_file_the_leader_manager_keeps(tmp_path: Path) -> None:
    paths = NodePaths.under(tmp_path)
    elasticsearch.config_dir(paths).mkdir(parents=True)
    (elasticsearch.config_dir(paths) / "elasticsearch.yml").write_text(json.dumps(
        {"discovery.zen.ping.unicast.hosts": ["10.0.0.1:9300"]}))
    assert elasticsearch.configured_members(paths) == ["10.0.0.1"]
    elasticsearch.write_seed_hosts(paths, MEMBERS)
    assert elasticsearch.configured_members(paths) == MEMBERS
