"""Fixtures shared by the integration modules (each defines its own `cluster`)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.harness import Cluster, Node


def at_defaults() -> str:
    """Settings for the operator procedures' clusters: none normally (the suite's fast TTL 10 and
    search off), the shipped defaults with CHEF_BACKEND_TEST_DEFAULTS=1 (TTL 30, search on; its heap
    kept at 256 MB so three nodes fit one host)."""
    if os.environ.get("CHEF_BACKEND_TEST_DEFAULTS") != "1":
        return ""
    return "leaderl.leader_ttl_seconds = 30\nelasticsearch.enable = true\nelasticsearch.heap_size = 256\n"


@pytest.fixture
def newcomer(cluster: Cluster):
    """A fourth node, configured (without the cluster's extra settings) but not a member."""
    node = Node(4, cluster.base)
    shutil.rmtree(node.root, ignore_errors=True)
    node.write_config()
    yield node
    shutil.rmtree(node.root, ignore_errors=True)
