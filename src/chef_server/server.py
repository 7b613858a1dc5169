"""`chef-server-api`: migrate the schema, make sure the superuser exists, then serve with several workers."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from . import bootstrap, config
from .storage.migrate import migrate


def prepare(settings: config.Settings) -> None:
    """Work every frontend does once at start; safe when several start together."""
    migrate(settings.db_conninfo)
    pem = bootstrap.ensure_superuser(settings.db_conninfo, settings.superuser_name)
    if settings.pivotal_key_path:
        bootstrap.write_key(settings.pivotal_key_path, pem)


def app_factory():
    """The ASGI app of one worker process (settings from $CHEF_SERVER_CONFIG and the environment)."""
    from .app import create_app
    # A thread building a node's search document (tens of ms of CPU) holds the GIL for up to the switch
    # interval each time the event loop wants it back: 1 ms instead of 5 keeps other requests' waits short.
    sys.setswitchinterval(0.001)
    return create_app(config.load())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chef-server-api", description=__doc__)
    parser.add_argument("--config", help="settings file (JSON)")
    parser.add_argument("--prepare-only", action="store_true", help="migrate and create the superuser, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.config:
        os.environ["CHEF_SERVER_CONFIG"] = args.config
    try:
        settings = config.load()
        prepare(settings)
    except (OSError, ValueError, psycopg.Error) as exc:
        reason = " ".join(str(exc).split())
        print(f"chef-server-api: cannot start: {reason}", file=sys.stderr)
        return 1
    if args.prepare_only:
        return 0
    from granian import Granian
    from granian.constants import Interfaces
    Granian("chef_server.server:app_factory", address=settings.listen_host, port=settings.listen_port,
            interface=Interfaces.ASGI, workers=settings.workers, factory=True).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
