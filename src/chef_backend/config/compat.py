"""Keys and value forms written for the original chef-backend, mapped onto this implementation.

Operators' files, and the original's own gen-sample-backend-config output, use keys we have no
option for and values in forms the original's Ruby took (`'on'` for a boolean, `'512m'` for a heap
in MB, `'["samehost", "samenet"]'` for a list). Each key or form either means something here and
is translated, or is accepted with a warning that says why it has no effect. Only a key that no
version of the original knew is an error (settings.py says which option was meant).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from chef_backend.config.options import PG_MAJOR, Option

# Keys of the original that we know under another name.
RENAMED: dict[str, str] = {
    "leaderl.health_check_interval_seconds": "leaderl.health_check.interval_seconds",  # before 1.2
    "elasticsearch.jvm_opts": "elasticsearch.java_opts",  # the original's gen-sample-backend-config
}

_NO_EPMD = "there is no Erlang runtime here, so no epmd service"
_SHM = f"PostgreSQL {PG_MAJOR} allocates its shared memory with mmap: there is no SysV kernel limit to raise"

# Keys of the original that have no counterpart here, with the reason (shown in the warning).
RETIRED: dict[str, str] = {
    "postgresql.data_dir": f"the data directory is /var/opt/chef-backend/postgresql/{PG_MAJOR}/data "
                           "(CHEF_BACKEND_ROOT relocates it)",
    "postgresql.shmall": _SHM,
    "postgresql.shmmax": _SHM,
    "elasticsearch.data_dir": "the search data directory is /var/opt/chef-backend/elasticsearch/data",
    "elasticsearch.temp_directory": "the search node's temporary directory is /var/opt/chef-backend/elasticsearch/tmp",
    "epmd.enable": _NO_EPMD,
    "epmd.environment": _NO_EPMD,
    "epmd.log_directory": _NO_EPMD,
    "epmd.log_rotation.file_maxbytes": _NO_EPMD,
    "epmd.log_rotation.num_to_keep": _NO_EPMD,
}

# PostgreSQL's own on/off settings, which operators also wrote as Ruby booleans.
_PG_SWITCHES = ("postgresql.hot_standby", "postgresql.wal_log_hints", "postgresql.archive_mode")

_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}

# Units of integer options, for values written with a unit ('512m', '60s').
_SIZE = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
         "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}
_TIME = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_QUANTITY = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def _unit(key: str) -> tuple[dict[str, float], float] | None:
    """The unit table an integer option's value is counted in, and the size of its unit."""
    if key in ("elasticsearch.heap_size", "elasticsearch.new_size") or key.endswith("_mb"):
        return _SIZE, 1024**2
    if key.endswith(("file_maxbytes", "max_bytes_behind_leader")):
        return _SIZE, 1
    if key.endswith(("_ms", "db_timeout", "heartbeat_interval", "election_timeout", "check_interval")):
        return _TIME, 0.001
    if key.endswith(("_seconds", "archive_timeout", "keepalives_idle", "keepalives_interval")):
        return _TIME, 1
    return None


def _integer(key: str, text: str) -> Any:
    m = _QUANTITY.match(text)
    if not m:
        return text
    number, suffix = float(m.group(1)), m.group(2).lower()
    unit = _unit(key)
    if not suffix:
        return int(number) if number.is_integer() else text
    if unit is None or suffix not in unit[0]:
        return text
    value = number * unit[0][suffix] / unit[1]
    return int(value) if value >= 1 or value == 0 else text


def _array(text: str) -> Any:
    from chef_backend.config.rbparser import RbSyntaxError, parse

    stripped = text.strip()
    if stripped.startswith(("[", "%w", "%W")):
        try:
            [assignment] = parse(f"x = {stripped}")
        except (RbSyntaxError, ValueError):
            return text
        return assignment.value
    return [part for part in re.split(r"[\s,]+", stripped) if part]


def coerce(opt: Option, value: Any) -> Any:
    """`value` in the form `opt` takes, where the original accepted another form; otherwise unchanged
    (the caller's type check then names the problem)."""
    t = opt.type
    if isinstance(value, str) and t == "boolean":
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else value
    if isinstance(value, str) and t == "integer":
        return _integer(opt.key, value)
    if isinstance(value, str) and t == "number":
        m = _QUANTITY.match(value)
        if m and not m.group(2):
            number = float(m.group(1))
            return int(number) if number.is_integer() and "." not in m.group(1) else number
        return value
    if isinstance(value, str) and t == "array":
        return _array(value)
    if isinstance(value, bool) and opt.key in _PG_SWITCHES:
        return "on" if value else "off"
    if t == "string" and opt.key.startswith("postgresql.") and isinstance(value, int | float) \
            and not isinstance(value, bool):
        return str(value)  # PostgreSQL reads a bare number in the setting's base unit
    if t == "string" and opt.key == "elasticsearch.java_opts" and isinstance(value, list):
        return shlex.join(str(v) for v in value)
    return value
