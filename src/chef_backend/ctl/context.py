"""What every ctl command needs: this node's paths, settings, identity, and the cluster store."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from chef_backend.cluster import endpoints as known_endpoints
from chef_backend.cluster.identity import NodeIdentity
from chef_backend.cluster.store import Store
from chef_backend.config.settings import Settings, load
from chef_backend.host.paths import NodePaths
from chef_backend.secrets import Secrets
from chef_backend.services import etcd, etcd_tls


class CtlError(Exception):
    """A refusal or failure; str() is the one line the operator sees."""


@dataclass
class Context:
    paths: NodePaths
    settings: Settings

    @classmethod
    def load(cls) -> Context:
        paths = NodePaths.current()
        return cls(paths, load(paths.config_file))

    @property
    def identity(self) -> NodeIdentity | None:
        return NodeIdentity.load(self.paths)

    def require_identity(self) -> NodeIdentity:
        ident = self.identity
        if ident is None:
            raise CtlError("this node is not part of a cluster yet: run create-cluster or join-cluster first")
        return ident

    def secrets(self) -> Secrets:
        return Secrets.load(self.paths.secrets_file)

    def store(self, timeout: float = 3.0, local_only: bool = False) -> Store:
        """A store over the local member first, then (unless `local_only`) every other member this
        node knows of."""
        endpoints = [etcd.client_url(self.settings)]
        if not local_only:
            endpoints += [e for e in known_endpoints.load(self.paths) if e not in endpoints]
        return Store(endpoints, timeout=timeout, tls=etcd_tls.client_tls(self.settings))


def add_compat_flags(parser: argparse.ArgumentParser) -> None:
    """Flags deployment tooling passes to the original on every command (`--accept-license --yes
    --quiet --verbose`): accepted everywhere. There is no license to accept and output is already
    terse; -y/--yes only matters where a command asks."""
    for flag in ("--accept-license", "--quiet", "--verbose"):
        if flag not in parser._option_string_actions:
            parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    if "--yes" not in parser._option_string_actions:
        parser.add_argument("-y", "--yes", action="store_true", help=argparse.SUPPRESS)


def print_config_warnings(settings: Settings) -> None:
    """The settings from the original's files that change nothing here, once each, on stderr."""
    for line in settings.warnings:
        print(f"WARNING: {line}", file=sys.stderr)


def confirm(question: str, assume_yes: bool) -> None:
    """Ask before a change; --yes answers for the operator; no terminal and no --yes refuses."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CtlError(f"{question} Pass --yes to confirm when not running interactively.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CtlError("cancelled; nothing was changed")
