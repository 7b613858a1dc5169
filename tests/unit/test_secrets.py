"""chef-backend-secrets.json: generation, validation, refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_backend.secrets import Secrets, SecretsError


def test_generated_secrets_have_the_original_shape() -> None:
    s = Secrets.generate()
    doc = json.loads(s.to_json())
    for value in (doc["postgresql"]["db_superuser_password"], doc["postgresql"]["replication_password"],
                  doc["etcd"]["initial_cluster_token"]):
        assert re.fullmatch(r"[0-9a-f]{100}", value)
    assert re.fullmatch(r"ChefBackend-[0-9a-f]{8}", doc["elasticsearch"]["cluster_name"])
    assert Secrets.parse(s.to_json(), "x") == s


def test_fingerprint_differs_between_clusters_and_hides_values() -> None:
    a, b = Secrets.generate(), Secrets.generate()
    assert a.fingerprint != b.fingerprint
    assert all(v not in a.fingerprint for v in a.all_values())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("{", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"postgresql": {}}', "postgresql.db_superuser_password is missing"),
    ],
)
def test_bad_files_are_refused_with_the_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(SecretsError) as exc:
        Secrets.load(path)
    assert message in str(exc.value)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(Secrets.generate().to_json()[:150])
    with pytest.raises(SecretsError, match="not valid JSON"):
        Secrets.load(path)


def test_missing_and_relative_paths(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="does not exist"):
        Secrets.load(tmp_path / "nope.json")
    with pytest.raises(SecretsError, match="must be absolute"):
        Secrets.load(Path("relative.json"))


@given(st.text(max_size=300))
def test_arbitrary_content_never_crashes(text: str) -> None:
    try:
        Secrets.parse(text, "f")
    except SecretsError:
        pass
