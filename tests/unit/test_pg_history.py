"""Timelines as PostgreSQL reports them: where one began, read from its history file (leader/pg.py),
and pg_rewind's "same timeline" (leader/actions.py)."""

from __future__ import annotations

import pytest

from chef_backend.leader.actions import rewind_saw_one_timeline
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


def test_pg_rewind_doing_nothing_on_one_timeline_number_is_recognised() -> None:
    # PostgreSQL 15's pg_rewind when both control files name the same timeline ID.
    same = "pg_rewind: source and target cluster are on the same timeline\npg_rewind: no rewind required\n"
    assert rewind_saw_one_timeline(same)
    # Nothing to do because the target stopped before the fork: a real answer, not a blind spot.
    ancestor = ("pg_rewind: servers diverged at WAL location 0/3000158 on timeline 2\n"
                "pg_rewind: no rewind required\n")
    assert not rewind_saw_one_timeline(ancestor)
