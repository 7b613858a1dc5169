"""Fixtures shared by the integration modules (each defines its own `cluster`)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.harness import Cluster, Node


@pytest.fixture
def newcomer(cluster: Cluster):
    """A fourth node, configured (without the cluster's extra settings) but not a member."""
    node = Node(4, cluster.base)
    shutil.rmtree(node.root, ignore_errors=True)
    node.write_config()
    yield node
    shutil.rmtree(node.root, ignore_errors=True)
