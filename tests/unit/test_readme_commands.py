"""What the README tells a newcomer to type must start from an install made by scripts/setup.

The benchmarks are long, so they are not run here; `--help` is enough to prove that everything they
import is installed (a missing dependency fails at import, before argparse answers).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p for p in (ROOT / "bench").glob("*.py") if "ArgumentParser(" in p.read_text())


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_each_benchmark_starts(script: Path) -> None:
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_readme_names_each_benchmark() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in BENCHMARKS if f"bench/{p.name}" not in readme]
    assert not missing, f"benchmarks the README does not mention: {missing}"


def test_the_local_cluster_script_runs_as_the_readme_writes_it() -> None:
    """`scripts/local_cluster.py down|destroy`, typed as printed: its own interpreter must be the install's
    (the system python3 has no chef_backend)."""
    result = subprocess.run([str(ROOT / "scripts" / "local_cluster.py"), "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "destroy" in result.stdout
