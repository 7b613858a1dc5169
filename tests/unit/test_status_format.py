"""The text shapes support tooling parses (facts §2)."""

from __future__ import annotations

import re

import pytest

from chef_backend.ctl.status import duration, local_state
from chef_backend.supervision.runit import ServiceStatus

GATHER_LOGS_RE = re.compile(r"^(\w+)\s+(\w+)\s+\(pid (\w+)\)\s+(\d+d \d+h \d+m \d+s)\s+(.*)$")


def test_duration_shape() -> None:
    assert duration(0) == "0d 0h 0m 0s"
    assert duration(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "2d 3h 4m 5s"


def test_running_row_matches_support_regex() -> None:
    row = f"{'postgresql':<12}{local_state(ServiceStatus('postgresql', 'run', 40686, 1, '')):<20}" \
          f"{duration(45383):<16}leader: 1; offline: 0; syncing: 0; synced: 2"
    m = GATHER_LOGS_RE.match(row)
    assert m and m.group(1) == "postgresql" and m.group(3) == "40686"
    assert m.group(5) == "leader: 1; offline: 0; syncing: 0; synced: 2"


def test_down_service_shows_down() -> None:
    assert local_state(ServiceStatus("etcd", "down", None, 3, "")) == "down"


@pytest.mark.parametrize("argv", [
    ["create-cluster", "--accept-license", "--yes", "--quiet"],
    ["join-cluster", "10.0.0.1", "--accept-license", "--yes", "--quiet", "-s", "/tmp/s.json"],
    ["restore", "/tmp/b.tar.gz", "--accept-license", "-y", "--publish_address", "10.0.0.2"],
    ["backup", "--accept-license", "-y", "--verbose"],
    ["upgrade", "--failover", "--quiet"],
])
def test_flags_deployment_tooling_passes_are_accepted(argv: list[str]) -> None:
    from chef_backend.ctl.main import build_parser

    assert build_parser().parse_args(argv).func is not None


def test_the_es_column_follows_the_search_cluster_and_falls_back_to_reports() -> None:
    from chef_backend.cluster.view import NodeView
    from chef_backend.config.settings import load_text
    from chef_backend.ctl.status import search_role

    on, off = load_text(""), load_text("elasticsearch.enable = false\n")
    fresh = NodeView("a" * 32, "n1", "10.0.0.1", 0.0, 7331, status={"role": "follower"})  # no report yet
    reported = NodeView("b" * 32, "n2", "10.0.0.2", 0.0, 7331, status={"search": {"status": "green"}})
    members = {"a" * 32, "b" * 32}
    assert search_role(on, fresh, "b" * 32, members) == "not_master"
    assert search_role(on, reported, "b" * 32, members) == "master"
    assert search_role(on, fresh, "b" * 32, {"b" * 32}) == "offline"
    assert search_role(on, fresh, None, None) == "offline"  # this node's search does not answer
    assert search_role(on, reported, None, None) == "not_master"
    assert search_role(off, reported, "b" * 32, members) == "disabled"
