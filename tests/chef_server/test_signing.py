"""Signature verification (pure): every protocol, tampering, clocks and header errors."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from chef_server import signing
from chef_server.authn import KeyCache
from chef_server.errors import ChefError

from .signer import sign

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
TS = "2026-01-02T03:04:05Z"


def lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def check(headers: dict, method="POST", path="/organizations/o/clients", body=b'{"a":1}', keys=(KEY,)) -> bool:
    signed = signing.check_headers(lower(headers))
    return signing.verify(signed, method, path, body, [k.public_key() for k in keys])


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.3"])
def test_each_protocol_verifies(version):
    h = sign(KEY, "alice", "POST", "/organizations/o/clients", b'{"a":1}', version=version, ts=TS)
    assert check(h)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.3"])
@pytest.mark.parametrize("change", [
    {"method": "PUT"}, {"path": "/organizations/x/clients"}, {"body": b'{"a":2}'}, {"keys": (OTHER,)}])
def test_tampering_fails(version, change):
    h = sign(KEY, "alice", "POST", "/organizations/o/clients", b'{"a":1}', version=version, ts=TS)
    assert not check(h, **change)


def test_any_key_of_the_requestor_verifies():
    h = sign(KEY, "alice", "POST", "/organizations/o/clients", b'{"a":1}', ts=TS)
    assert check(h, keys=(OTHER, KEY))


def test_path_is_canonical():
    h = sign(KEY, "alice", "GET", "/users//alice/", b"", ts=TS)
    assert check(h, method="GET", path="/users/alice?x=1", body=b"")


def test_userid_or_timestamp_swapped_fails():
    h = sign(KEY, "alice", "GET", "/users", b"", ts=TS)
    assert not check({**h, "X-Ops-Userid": "bob"}, method="GET", path="/users", body=b"")
    assert not check({**h, "X-Ops-Timestamp": "2026-01-02T03:04:06Z"}, method="GET", path="/users", body=b"")


@pytest.mark.parametrize("missing", ["X-Ops-Sign", "X-Ops-Timestamp", "X-Ops-Content-Hash", "X-Ops-Userid"])
def test_missing_header_is_400(missing):
    h = sign(KEY, "alice", "GET", "/users", ts=TS)
    h[missing] = ""
    with pytest.raises(ChefError) as err:
        signing.check_headers(lower(h))
    assert err.value.status == 400


@pytest.mark.parametrize("desc", ["version=8.1", "algorithm=sha1;version=1.3", "algorithm=md5;version=1.0", "x"])
def test_unsupported_protocol_is_400(desc):
    with pytest.raises(ChefError) as err:
        signing.parse_sign_description(desc)
    assert err.value.status == 400
    assert err.value.body == {"error": ["Unsupported authentication protocol version"]}


def test_missing_or_broken_signature_lines_fail():
    h = sign(KEY, "alice", "GET", "/users", ts=TS)
    del h["X-Ops-Authorization-2"]
    assert not check(h, method="GET", path="/users", body=b"")
    h = sign(KEY, "alice", "GET", "/users", ts=TS)
    h["X-Ops-Authorization-1"] = "xxx"
    assert not check(h, method="GET", path="/users", body=b"")


@pytest.mark.parametrize("ts,ok", [
    (TS, True), ("2026-01-02T02:50:05Z", True), ("2026-01-02T03:19:05Z", True),
    ("2026-01-02T02:49:04Z", False), ("2026-01-02T03:19:06Z", False), ("xxx", False), ("2026-13-02T03:04:05Z", False)])
def test_clock_skew_is_fifteen_minutes(ts, ok):
    signed = signing.check_headers(lower(sign(KEY, "alice", "GET", "/users", ts=ts)))
    if ok:
        signing.check_clock(signed, NOW)
    else:
        with pytest.raises(ChefError) as err:
            signing.check_clock(signed, NOW)
        assert err.value.status == 401


def test_trailing_semicolon_in_sign_description():
    assert signing.parse_sign_description("algorithm=sha1;version=1.1;") == ("1.1", "sha1")


@settings(max_examples=25, deadline=None)
@given(body=st.binary(max_size=300), path=st.text(alphabet="abc/_-.%", min_size=1, max_size=40).map(lambda p: "/" + p),
       method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]), version=st.sampled_from(["1.0", "1.1", "1.3"]))
def test_round_trip_for_any_request(body, path, method, version):
    h = sign(KEY, "someone", method, path, body, version=version, ts=TS)
    assert check(h, method=method, path=path, body=body)
    assert not check(h, method=method, path=path, body=body + b"x")


def test_key_cache_keeps_nothing_stale():
    cache = KeyCache(ttl=60)
    cache.put(("o", "n"), {"v": 1}, cache.generation)
    assert cache.get(("o", "n")) is None  # not listening: never cached
    cache.listening = True
    before = cache.generation
    cache.invalidate()  # a change was notified while the lookup was in flight
    cache.put(("o", "n"), {"v": 1}, before)
    assert cache.get(("o", "n")) is None
    cache.put(("o", "n"), {"v": 2}, cache.generation)
    assert cache.get(("o", "n")) == {"v": 2}
    cache.invalidate()
    assert cache.get(("o", "n")) is None
