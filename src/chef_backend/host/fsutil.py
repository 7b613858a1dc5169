"""File-system helpers: atomic writes with owner and mode, and the service users."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def write_file(
    path: Path,
    content: str | bytes,
    mode: int = 0o644,
    owner: str | None = None,
    group: str | None = None,
) -> bool:
    """Write `content` atomically with the given owner and mode; return True if it changed.

    The temporary file gets its final mode and owner before the rename, so a secret is never
    readable by anyone else, not even for a moment.
    """
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = True
    try:
        changed = path.read_bytes() != data
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if owner or group:
            os.fchown(fd, uid(owner) if owner else -1, gid(group) if group else -1)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return changed


def uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid


def chown(path: Path, user: str, group: str | None = None) -> None:
    os.chown(path, uid(user), gid(group or user))


def make_dir(path: Path, user: str | None = None, mode: int = 0o755) -> Path:
    """Create `path` (and parents) owned by `user`, with `mode` on the last component."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if user:
        chown(path, user)
    return path


def ensure_user(name: str) -> None:
    """Create a system user (and its group) when missing: services never run as root."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
    )

