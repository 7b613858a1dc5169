"""The original's command-line habits: help, global flags everywhere, runbook commands."""

from __future__ import annotations

import json

import pytest

from chef_backend.cluster.view import ClusterView, NodeView
from chef_backend.config.settings import load_text
from chef_backend.ctl import pgsql_follow
from chef_backend.ctl.context import CtlError
from chef_backend.ctl.leadership import ahead_of
from chef_backend.ctl.main import build_parser, hoist_global_flags, main
from chef_backend.host.paths import NodePaths

# One valid set of positional arguments for the commands that need them.
POSITIONALS = {"join-cluster": ["10.0.0.1"], "gen-server-config": ["fe.example.com"], "promote": ["be2"],
               "set-cluster-failover": ["on"], "set-node-failover": ["off"], "remove-node": ["be3"],
               "restore": ["/tmp/b.tar.gz"], "pgsql-follow": ["10.0.0.1"]}
GLOBAL = ["--accept-license", "--quiet", "--verbose"]


def _commands() -> list[str]:
    return sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


@pytest.mark.parametrize("command", _commands())
def test_every_command_takes_the_global_flags_before_and_after_it(command: str) -> None:
    rest = POSITIONALS.get(command, [])
    for argv in ([*GLOBAL, command, *rest], [command, *rest, *GLOBAL, "-y"], ["--yes", "--quiet", command, *rest]):
        args = build_parser().parse_args(hoist_global_flags(argv))
        assert args.func is not None and args.subcommand == command


def test_hoisting_leaves_other_arguments_alone() -> None:
    assert hoist_global_flags(["--accept-license", "-y", "join-cluster", "10.0.0.1", "--recovery"]) == [
        "join-cluster", "--accept-license", "-y", "10.0.0.1", "--recovery"]
    assert hoist_global_flags(["status", "--quiet"]) == ["status", "--quiet"]
    assert hoist_global_flags(["--quiet"]) == ["--quiet"]


def test_help_lists_every_command_and_help_command_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    for command in ("create-cluster", "join-cluster", "pgsql-follow", "gen-sample-backend-config", "help"):
        assert command in out
    assert main(["--accept-license", "help", "pgsql-follow"]) == 0
    assert "--force-basebackup" in capsys.readouterr().out
    assert main(["help", "no-such-command"]) == 1
    assert "no command 'no-such-command'" in capsys.readouterr().err


def test_restore_staging_dir_help_names_the_default_the_code_uses() -> None:
    help_text = build_parser()._subparsers._group_actions[0].choices["restore"].format_help()  # type: ignore
    default = str(NodePaths.current().var.parent / "chef-backend-restore")
    assert default in " ".join(help_text.split())


@pytest.mark.parametrize(
    ("leader", "given", "outcome"),
    [
        ({"guid": "b" * 32, "address": "10.0.0.2"}, "10.0.0.2", "10.0.0.2"),
        ({"guid": "b" * 32, "address": "10.0.0.2"}, "10.0.0.3", "the leader is 10.0.0.2: chef-backend-ctl pgsql-follow "
                                                              "10.0.0.2"),
        ({"guid": "a" * 32, "address": "10.0.0.1"}, "10.0.0.1", "this node is the leader"),
        (None, "10.0.0.2", "the cluster has no leader"),
    ],
)
def test_pgsql_follow_only_overwrites_a_non_leader_from_the_leader(leader: dict | None, given: str,
                                                                   outcome: str) -> None:
    if outcome == given:
        assert pgsql_follow.check_target(leader, "a" * 32, given) == given
    else:
        with pytest.raises(CtlError, match=outcome):
            pgsql_follow.check_target(leader, "a" * 32, given)


def _node(name: str, lsn: int | None) -> NodeView:
    status = None if lsn is None else {"role": "waiting_for_leader", "position": {"timeline": 2, "lsn": lsn}}
    return NodeView(guid=name * 32, name=name, address="10.0.0.1", joined_at=0, http_port=7331, status=status)


def test_promote_without_a_leader_refuses_a_node_behind_another() -> None:
    view = ClusterView.__new__(ClusterView)
    view.nodes = [_node("a", 100), _node("b", 200), _node("c", None)]
    assert ahead_of(view, view.nodes[0]) == ["b"]
    assert ahead_of(view, view.nodes[1]) == []


def test_etcd_and_search_also_listen_on_loopback_for_the_runbooks_commands(tmp_path) -> None:
    from chef_backend.secrets import Secrets
    from chef_backend.services import elasticsearch, etcd

    s = load_text("publish_address '10.1.2.3'\n")
    assert s.local_address == "127.0.0.1"
    assert load_text("publish_address '127.0.0.11'\n").local_address is None  # nodes sharing a host
    assert load_text("publish_address 'fd00::3'\n").local_address == "::1"
    doc = json.loads(elasticsearch.render_config(s, Secrets.generate(), "g" * 32, ["10.1.2.3"], True,
                                                 elasticsearch.Engine("opensearch", "2.19.6", None)))
    assert doc["network.bind_host"] == ["10.1.2.3", "127.0.0.1"] and doc["network.publish_host"] == "10.1.2.3"
    assert etcd.client_url(s, s.local_address) == "http://127.0.0.1:2379"


def test_the_boot_unit_and_the_init_script_run_the_same_commands() -> None:
    from chef_backend.host import boot

    assert boot.boot_command(boot.UNIT) == boot.boot_command(boot.INIT) == [boot.CTL, "boot"]
    assert f"ExecStop={boot.CTL} boot --shutdown" in boot.UNIT and "KillMode=none" in boot.UNIT
    assert f"stop) exec {boot.CTL} boot --shutdown" in boot.INIT
