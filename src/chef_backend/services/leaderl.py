"""The leader manager's runit service (the process itself is chef_backend.leader.daemon)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from chef_backend.config.settings import Settings
from chef_backend.host.paths import NodePaths, root
from chef_backend.supervision.runit import CHPST, ServiceSpec


def executable() -> Path:
    """The chef-backend-leaderl entry point installed beside the running interpreter."""
    return Path(sys.executable).parent / "chef-backend-leaderl"


def service_spec(settings: Settings, paths: NodePaths) -> ServiceSpec:
    user = settings["leaderl.username"]
    run = (
        "#!/bin/sh\n"
        "exec 2>&1\n"
        f"exec {CHPST} -e ./env -u {user}:{user} env CHEF_BACKEND_ROOT={shlex.quote(str(root()))} "
        f"{shlex.quote(str(executable()))} --config {shlex.quote(str(paths.leaderl_config))}\n"
    )
    return ServiceSpec(
        name="leaderl",
        run_script=run,
        log_dir=settings.path("leaderl.log_directory") or Path("/dev/null"),
        log_user=user,
        file_maxbytes=settings["leaderl.log_rotation.file_maxbytes"],
        num_to_keep=settings["leaderl.log_rotation.num_to_keep"],
        start_down=settings["leaderl.start_down"],
        environment=settings["leaderl.environment"],
    )
