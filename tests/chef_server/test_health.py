"""chef-server-ctl status's judgements of the API, the leader and search (pure)."""

from __future__ import annotations

import pytest

from chef_server.ctl import health

PG, ES = "chef_backend_postgresql", "chef_backend_elasticsearch"


@pytest.mark.parametrize(("code", "body", "error", "ok", "line"), [
    (200, {"status": "pong", "upstreams": {"chef_sql": "pong"}}, "", True, "chef-server-api: ok (chef_sql pong)"),
    (500, {"status": "fail", "upstreams": {"chef_sql": "fail"}}, "", False,
     "chef-server-api: HTTP 500 fail (chef_sql fail)"),
    (502, None, "", False, "chef-server-api: HTTP 502"),
    (None, None, "connection refused", False, "chef-server-api: unreachable (connection refused)"),
])
def test_judge_api(code, body, error, ok, line):
    assert health.judge_api(code, body, error) == (ok, line)


@pytest.mark.parametrize(("up", "ok", "line"), [
    ({PG: ["be1"], ES: ["be1"]}, True, "leader: be1"),
    ({PG: [], ES: []}, False, "leader: none (no backend UP in HAProxy)"),
    ({PG: ["be1", "be2"], ES: ["be1"]}, False, "leader: several backends UP (be1, be2)"),
])
def test_judge_leader(up, ok, line):
    assert health.judge_leader(up) == (ok, line)


@pytest.mark.parametrize(("code", "body", "ok", "line"), [
    (200, {"status": "green", "number_of_nodes": 3}, True, "search: green (3 nodes)"),
    (200, {"status": "yellow", "number_of_nodes": 1}, True, "search: yellow (1 nodes)"),
    (200, {"status": "red", "number_of_nodes": 2}, False, "search: red (2 nodes)"),
    (503, {"error": "x"}, False, "search: HTTP 503 from _cluster/health"),
    (None, None, False, "search: unreachable (refused)"),
])
def test_judge_search(code, body, ok, line):
    assert health.judge_search(code, body, "refused") == (ok, line)
