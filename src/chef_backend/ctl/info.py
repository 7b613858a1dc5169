"""`version`, `gen-sample-backend-config` and `show-config`."""

from __future__ import annotations

import argparse
import json

from chef_backend import __version__
from chef_backend.config.settings import sample_config
from chef_backend.ctl.context import Context


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("version", help="print the installed version and its components").set_defaults(func=run_version)
    sub.add_parser(
        "gen-sample-backend-config", help="print every chef-backend.rb setting with its default"
    ).set_defaults(func=run_sample)
    sub.add_parser("show-config", help="print the effective settings of this node").set_defaults(func=run_show)


def run_version(args: argparse.Namespace) -> int:
    print(f"chef-backend {__version__}")
    manifest = Context.load().paths.manifest_file
    if manifest.exists():
        for name, version in json.loads(manifest.read_text())["software"].items():
            print(f"  {name} {version}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    print(sample_config(), end="")
    return 0


def run_show(args: argparse.Namespace) -> int:
    print(Context.load().settings.render(), end="")
    return 0
