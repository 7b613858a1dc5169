"""The cluster-wide secrets file, chef-backend-secrets.json.

Shape (as the original's deployment tools write it):

    {"postgresql": {"db_superuser_password": "<100 hex>", "replication_password": "<100 hex>"},
     "etcd": {"initial_cluster_token": "<100 hex>"},
     "elasticsearch": {"cluster_name": "ChefBackend-<8 hex>"}}

A cluster created with `etcd.tls = true` also keeps its etcd certificate authority there
(`etcd.ca_certificate`, `etcd.ca_key`, PEM), so that a joining node, which has nothing but this
file, can issue its own etcd certificates.

The file is owned root:chef_pgsql with mode 0640 (seed). Members publish a fingerprint of it in
etcd so that a join with another cluster's (or a stale) secrets file is refused before anything
changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets as _random
from dataclasses import dataclass
from pathlib import Path

from chef_backend.host import fsutil

_HEX100 = re.compile(r"^[0-9a-f]{100}$")
_CLUSTER_NAME = re.compile(r"^ChefBackend-[0-9a-f]{8}$")
# Shape only (the leader manager reads this file too, and needs no crypto library); etcd_certs
# parses them for real.
_PEM = re.compile(r"^-----BEGIN ([A-Z ]+)-----\n[A-Za-z0-9+/=\n]+-----END \1-----\n?$")


class SecretsError(ValueError):
    """A missing, unreadable or malformed secrets file; str() tells the operator what to do."""


@dataclass(frozen=True)
class Secrets:
    db_superuser_password: str
    replication_password: str
    etcd_initial_cluster_token: str
    elasticsearch_cluster_name: str
    etcd_ca_certificate: str | None = None
    etcd_ca_key: str | None = None

    @classmethod
    def generate(cls) -> Secrets:
        """Fresh secrets for a new cluster: 100 hex characters each (400 random bits)."""
        return cls(
            db_superuser_password=_random.token_hex(50),
            replication_password=_random.token_hex(50),
            etcd_initial_cluster_token=_random.token_hex(50),
            elasticsearch_cluster_name=f"ChefBackend-{_random.token_hex(4)}",
        )

    def to_json(self) -> str:
        doc = {
            "postgresql": {
                "db_superuser_password": self.db_superuser_password,
                "replication_password": self.replication_password,
            },
            "etcd": {"initial_cluster_token": self.etcd_initial_cluster_token},
            "elasticsearch": {"cluster_name": self.elasticsearch_cluster_name},
        }
        if self.etcd_ca_certificate and self.etcd_ca_key:
            doc["etcd"].update(ca_certificate=self.etcd_ca_certificate, ca_key=self.etcd_ca_key)
        return json.dumps(doc, indent=2) + "\n"

    @property
    def fingerprint(self) -> str:
        """A one-way digest of all secrets; safe to publish, used to recognise the same cluster."""
        return hashlib.sha256(b"chef-backend-secrets\0" + self.to_json().encode()).hexdigest()

    def all_values(self) -> list[str]:
        """Every secret string, for scrubbing output and logs."""
        values = [self.db_superuser_password, self.replication_password, self.etcd_initial_cluster_token]
        return values + ([self.etcd_ca_key] if self.etcd_ca_key else [])

    def with_etcd_ca(self, certificate: str, key: str) -> Secrets:
        """These secrets plus an etcd certificate authority (PEM)."""
        return dataclasses.replace(self, etcd_ca_certificate=certificate, etcd_ca_key=key)

    @classmethod
    def parse(cls, text: str, where: str) -> Secrets:
        """Validate the file's content; raise SecretsError naming the first problem."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretsError(
                f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                "copy chef-backend-secrets.json again from a cluster member"
            ) from None
        if not isinstance(doc, dict):
            raise SecretsError(f"{where} must hold a JSON object; copy it again from a cluster member")

        def field(section: str, key: str, pattern: re.Pattern[str], what: str) -> str:
            value = doc.get(section, {}).get(key) if isinstance(doc.get(section), dict) else None
            if not isinstance(value, str) or not pattern.match(value):
                raise SecretsError(
                    f"{where}: {section}.{key} is missing or not {what}; "
                    "copy chef-backend-secrets.json again from a cluster member"
                )
            return value

        ca_cert, ca_key = _etcd_ca(doc.get("etcd"), where)
        return cls(
            db_superuser_password=field("postgresql", "db_superuser_password", _HEX100, "100 hex characters"),
            replication_password=field("postgresql", "replication_password", _HEX100, "100 hex characters"),
            etcd_initial_cluster_token=field("etcd", "initial_cluster_token", _HEX100, "100 hex characters"),
            elasticsearch_cluster_name=field(
                "elasticsearch", "cluster_name", _CLUSTER_NAME, "of the form ChefBackend-<8 hex>"
            ),
            etcd_ca_certificate=ca_cert,
            etcd_ca_key=ca_key,
        )

    @classmethod
    def load(cls, path: Path) -> Secrets:
        """Read and validate a secrets file."""
        if not path.is_absolute():
            raise SecretsError(f"secrets file path {path} must be absolute")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretsError(
                f"secrets file {path} does not exist; copy chef-backend-secrets.json from a cluster member "
                "and pass it with -s PATH"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsError(f"cannot read secrets file {path}: {exc}") from None
        if not text.strip():
            raise SecretsError(f"secrets file {path} is empty; copy it again from a cluster member")
        return cls.parse(text, str(path))

    def save(self, path: Path, group: str) -> None:
        """Write atomically, root:<group> 0640 (seed)."""
        fsutil.write_file(path, self.to_json(), mode=0o640, owner="root", group=group)


def _etcd_ca(section: object, where: str) -> tuple[str | None, str | None]:
    """The optional etcd CA: both PEM parts or neither."""
    if not isinstance(section, dict):
        return None, None
    cert, key = section.get("ca_certificate"), section.get("ca_key")
    if cert is None and key is None:
        return None, None
    if not (isinstance(cert, str) and isinstance(key, str) and _pem_kind(cert) == "CERTIFICATE"
            and _pem_kind(key) in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")):
        raise SecretsError(f"{where}: etcd.ca_certificate and etcd.ca_key must both be PEM (certificate, "
                           "unencrypted key); copy chef-backend-secrets.json again from a cluster member")
    return cert, key


def _pem_kind(text: str) -> str | None:
    match = _PEM.match(text)
    return match.group(1) if match else None
