"""Which client-network lists a running cluster may take (node/client_networks.py)."""

from __future__ import annotations

import ipaddress

import pytest

from chef_backend.config.settings import ConfigError, load_text
from chef_backend.node.client_networks import admits, dropped, invalid_entry, refusal, refused_members

HOST = [ipaddress.ip_interface("10.0.1.5/24"), ipaddress.ip_interface("127.0.0.1/8")]


@pytest.mark.parametrize(
    ("entry", "address", "verdict"),
    [
        ("all", "192.0.2.9", True),
        ("samehost", "10.0.1.5", True),
        ("samehost", "10.0.1.6", False),
        ("samenet", "10.0.1.6", True),
        ("samenet", "10.0.2.6", False),
        ("10.0.0.0/16", "10.0.2.6", True),
        ("192.168.1.3/24", "192.168.1.77", True),  # the seed's own example: host bits are masked
        ("10.0.2.6", "10.0.2.6", True),
        ("10.0.2.6/32", "10.0.2.7", False),
        ("fd00::/8", "10.0.2.6", False),
        ("backend2.example.com", "10.0.2.6", None),
        (".example.com", "10.0.2.6", None),
    ],
)
def test_admits(entry: str, address: str, verdict: bool | None) -> None:
    assert admits(entry, address, HOST) is verdict


@pytest.mark.parametrize(
    ("entries", "members", "refused"),
    [
        (["samehost", "samenet"], ["10.0.1.5", "10.0.1.6", "10.0.1.7"], []),
        (["samehost", "samenet", "192.168.1.0/24"], ["10.0.1.5", "10.0.1.6"], []),  # widening
        (["samehost"], ["10.0.1.5", "10.0.1.6"], ["10.0.1.6"]),
        (["192.168.1.0/24"], ["10.0.1.5", "10.0.1.6"], ["10.0.1.5", "10.0.1.6"]),
        (["10.0.1.6", "samehost"], ["10.0.1.5", "10.0.1.6", "10.0.1.7"], ["10.0.1.7"]),
        (["backends.example.com"], ["10.0.1.5", "10.0.1.6"], []),  # depends on DNS: not ours to refuse
        (["all"], ["10.9.9.9"], []),
    ],
)
def test_only_a_list_that_shuts_out_members_is_refused(entries: list[str], members: list[str],
                                                       refused: list[str]) -> None:
    assert refused_members(entries, members, HOST) == refused
    why = refusal(entries, members, HOST)
    assert (why is None) == (not refused)
    if why:
        assert ", ".join(refused) in why and "replication" in why


def test_dropped_entries_are_named() -> None:
    assert dropped(["samehost", "samenet"], ["samehost", "samenet", "10.0.0.0/8"]) == ["10.0.0.0/8"]
    assert dropped(["samehost", "samenet", "10.0.0.0/8"], ["samehost", "samenet"]) == []
    assert dropped(["samehost"], None) == []


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0.300", "10.0.0.0/8 md5", "host name", "fd00::zz"])
def test_entries_postgresql_would_reject_are_config_errors(entry: str) -> None:
    assert invalid_entry(entry) is not None
    with pytest.raises(ConfigError, match="md5_auth_cidr_addresses"):
        load_text(f"postgresql.md5_auth_cidr_addresses = ['samehost', '{entry}']\n")


@pytest.mark.parametrize("entry", ["all", "samehost", "samenet", "10.0.0.0/8", "192.168.1.3/24", "fd00::/8",
                                   "::1", "backend1", "backend1.example.com", ".example.com"])
def test_entries_postgresql_takes_load(entry: str) -> None:
    assert invalid_entry(entry) is None
