"""Where a timeline began, read from its history file (leader/pg.py)."""

from __future__ import annotations

import pytest

from chef_backend.leader.pg import timeline_start


@pytest.mark.parametrize(("text", "start"), [
    ("1\t0/3000158\tno recovery target specified\n", 0x3000158),
    ("1\t0/3000158\tno recovery target specified\n\n2\t1/A0\tno recovery target specified\n", (1 << 32) + 0xA0),
    ("# comment\n1\t0/10\tx\n", 0x10),
    ("", None),
    ("garbage", None),
    ("1\tzz/10\tx\n", None),
])
def test_the_last_switch_point_is_where_the_timeline_began(text: str, start: int | None) -> None:
    assert timeline_start(text) == start
