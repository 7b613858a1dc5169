"""`gather-logs`: one tarball for a support case: logs, configuration with secrets removed,
`status` (as chef-backend-ctl-status.txt, where support tooling looks for it), cluster-status
and system facts."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from chef_backend.ctl.context import Context
from chef_backend.secrets import SecretsError
from chef_backend.services import postgresql

SYSTEM_COMMANDS = {
    "uname.txt": ["uname", "-a"],
    "df.txt": ["df", "-h"],
    "free.txt": ["free", "-m"],
    "ps.txt": ["ps", "-eo", "pid,user,rss,etime,args"],
    "uptime.txt": ["uptime"],
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gather-logs", help="write a tarball of logs, configuration and status for support")
    p.add_argument("-o", "--output-dir", default=".", metavar="DIR", help="where to write it (default: here)")
    p.set_defaults(func=run)


def _ctl(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "chef_backend.ctl.main", *args], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    return result.stdout + result.stderr


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    try:
        secrets = ctx.secrets().all_values()
    except SecretsError:
        secrets = []

    def clean(text: str) -> bytes:
        for value in secrets:
            text = text.replace(value, "<removed>")
        return text.encode()

    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    name = f"chef-backend-logs-{stamp}"
    out = Path(args.output_dir).absolute() / f"{name}.tar.gz"
    entries: dict[str, bytes] = {
        "chef-backend-ctl-status.txt": clean(_ctl("status")),
        "cluster-status.json": clean(_ctl("cluster-status", "--json")),
        "show-config.txt": clean(_ctl("show-config")),
    }
    for file_name, argv in SYSTEM_COMMANDS.items():
        try:
            entries[f"system/{file_name}"] = clean(subprocess.run(argv, capture_output=True, text=True,
                                                                  timeout=30).stdout)
        except (OSError, subprocess.SubprocessError) as exc:
            entries[f"system/{file_name}"] = f"{exc}\n".encode()
    layout = postgresql.PgLayout.of(ctx.settings, ctx.paths)
    for path in (ctx.paths.config_file, ctx.paths.manifest_file, layout.conf, layout.hba, layout.standby_conf,
                 ctx.paths.etcd_config):
        if path.is_file():
            entries[f"config/{path.name}"] = clean(path.read_text(errors="replace"))
    if ctx.paths.log.is_dir():
        for path in sorted(ctx.paths.log.rglob("*")):
            if path.is_file() and path.name != "lock":
                entries[f"logs/{path.relative_to(ctx.paths.log)}"] = clean(path.read_text(errors="replace"))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for arcname, data in entries.items():
            info = tarfile.TarInfo(f"{name}/{arcname}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    print(f"Wrote {out} ({len(entries)} files; secrets removed)")
    return 0
