"""Settings of the API service: a JSON file (written by reconfigure) overridden by CHEF_SERVER_* variables."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Settings:
    db_conninfo: str = "host=127.0.0.1 port=5432 dbname=opscode_chef user=opscode_chef"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    workers: int = 2
    db_pool_size: int = 8
    key_cache_ttl: float = 60.0
    superuser_name: str = "pivotal"
    pivotal_key_path: str = "/etc/opscode/pivotal.pem"
    required_recipe_path: str = ""  # a recipe every chef-client must run (GET /organizations/O/required_recipe)


def load(path: str | None = None) -> Settings:
    """Settings from `path` (or $CHEF_SERVER_CONFIG), then environment overrides such as CHEF_SERVER_LISTEN_PORT."""
    values: dict = {}
    path = path or os.environ.get("CHEF_SERVER_CONFIG")
    if path:
        with open(path) as fh:
            values.update(json.load(fh))
    for f in fields(Settings):
        env = os.environ.get(f"CHEF_SERVER_{f.name.upper()}")
        if env is not None:
            values[f.name] = env
    known = {f.name: f for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    typed = {}
    for name, value in values.items():
        kind = known[name].type
        typed[name] = int(value) if kind == "int" else float(value) if kind == "float" else value
    return Settings(**typed)
