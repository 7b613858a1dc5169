"""First start of a cluster's API: the pivotal superuser and its key, shared by every frontend."""

from __future__ import annotations

import os
import uuid

import psycopg

from . import keys as keylib

SECRET = "pivotal_private_key"


def ensure_superuser(conninfo: str, name: str) -> str:
    """Create the superuser and its key once per cluster (under the migration's serialising insert); returns
    the private key PEM, the same on every frontend."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT value FROM server_secrets WHERE name = %s", (SECRET,)).fetchone()
        if row:
            return row[0]
        public, private = keylib.generate_key_pair()
        with conn.transaction():
            inserted = conn.execute("INSERT INTO server_secrets (name, value) VALUES (%s, %s) "
                                    "ON CONFLICT DO NOTHING", (SECRET, private)).rowcount
            if inserted:
                user_id = uuid.uuid4().hex
                conn.execute(
                    "INSERT INTO users (id, authz_id, username, superuser, serialized_object) "
                    "VALUES (%s, %s, %s, true, %s)",
                    (user_id, uuid.uuid4().hex, name, '{"display_name": "Chef Server Superuser"}'))
                conn.execute("INSERT INTO keys (owner_id, key_name, public_key) VALUES (%s, 'default', %s)",
                             (user_id, public))
        return conn.execute("SELECT value FROM server_secrets WHERE name = %s", (SECRET,)).fetchone()[0]


def write_key(path: str, pem: str) -> None:
    """Write the key readable by root only, replacing any old copy atomically."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pem)
    os.replace(tmp, path)
