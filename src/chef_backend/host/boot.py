"""Starting a node at boot: a systemd unit where systemd runs, an init script where it does not.

Both run `chef-backend-ctl boot` when the host starts (it starts the node's runsvdir and services,
unless the operator stopped the node on purpose) and `chef-backend-ctl boot --shutdown` when it
stops (a clean stop, so a leader hands over rather than being killed). The original's package
installed a unit that started its runsvdir in the same way. scripts/setup installs it:
`python -m chef_backend.host.boot`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CTL = "/opt/chef-backend/embedded/bin/chef-backend-ctl"
UNIT_NAME = "chef-backend-runsvdir.service"
UNIT_PATH = Path("/etc/systemd/system") / UNIT_NAME
INIT_SCRIPT = Path("/etc/init.d/chef-backend")

UNIT = f"""\
[Unit]
Description=chef-backend: this node's services (runsvdir and what it supervises)
Wants=network-online.target
After=network-online.target time-sync.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={CTL} boot
ExecStop={CTL} boot --shutdown
# The services live on in runsvdir's process tree, which is this unit's.
KillMode=none
TimeoutStartSec=600
TimeoutStopSec=300

[Install]
WantedBy=multi-user.target
"""

INIT = f"""\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          chef-backend
# Required-Start:    $network $remote_fs $time
# Required-Stop:     $network $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: chef-backend: this node's services (runsvdir and what it supervises)
### END INIT INFO
case "$1" in
  start) exec {CTL} boot ;;
  stop) exec {CTL} boot --shutdown ;;
  restart|force-reload) {CTL} boot --shutdown; exec {CTL} boot ;;
  status) exec {CTL} status ;;
  *) echo "Usage: $0 start|stop|restart|status" >&2; exit 3 ;;
esac
"""


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def boot_command(text: str) -> list[str]:
    """The command a rendered unit or init script runs at boot (tests run exactly that)."""
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            return line.removeprefix("ExecStart=").split()
        if line.strip().startswith("start)"):
            return line.split("exec", 1)[1].strip().rstrip(";").split()
    raise ValueError("no boot command found")


def install() -> str:
    """Install the unit (systemd) or the init script (otherwise) and enable it; says which."""
    if systemd_running():
        UNIT_PATH.write_text(UNIT)
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "enable", UNIT_NAME], check=True, capture_output=True)
        return f"enabled {UNIT_PATH}"
    INIT_SCRIPT.write_text(INIT)
    INIT_SCRIPT.chmod(0o755)
    if shutil.which("update-rc.d"):
        subprocess.run(["update-rc.d", "chef-backend", "defaults"], check=True, capture_output=True)
        return f"installed {INIT_SCRIPT} (update-rc.d)"
    return f"installed {INIT_SCRIPT}; no systemd or update-rc.d here: have the init system run it at boot"


if __name__ == "__main__":
    print(install())
    sys.exit(0)
