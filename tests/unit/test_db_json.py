"""The API's JSON loader for PostgreSQL values gives exactly what the standard library's json gives."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from chef_server.storage.db import json_loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@given(JSON)
def test_same_values_as_json(value: object) -> None:
    text = json.dumps(value).encode()
    assert json_loads(text) == json.loads(text)
    assert repr(json_loads(text)) == repr(json.loads(text))  # ints stay ints, floats floats


def test_numbers_postgresql_prints() -> None:
    for text in (b"123456789012345678901234567890", b"-9223372036854775809", b"1" + b"0" * 400, b"1.10", b"-0.0"):
        assert repr(json_loads(text)) == repr(json.loads(text))
