"""The leader manager's HTTP server, in process, under arbitrary bytes: it answers HTTP or closes,
and keeps serving /leader."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chef_backend.host.httpcheck import http_status
from chef_backend.leader.http import HttpServer, Published


@pytest.fixture(scope="module")
def server() -> tuple[str, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    HttpServer(Published(), "127.0.0.1", port).start()
    return "127.0.0.1", port


def exchange(address: tuple[str, int], payload: bytes) -> bytes:
    with socket.create_connection(address, timeout=3) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return data


REQUEST_LINES = st.sampled_from([b"GET /leader HTTP/1.1\r\n", b"GET /status HTTP/1.0\r\n", b"POST / HTTP/1.1\r\n",
                                 b"HEAD /leader HTTP/1.1\r\n", b""])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=REQUEST_LINES, rest=st.binary(max_size=3000))
def test_any_bytes_get_an_http_answer_or_a_close(server: tuple[str, int], start: bytes, rest: bytes) -> None:
    answer = exchange(server, start + rest)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
    assert http_status(f"http://{server[0]}:{server[1]}/leader", 2) == 503


@pytest.mark.parametrize("sent", [b"", b"GET /leader HTTP/1.1\r\nHost: x\r\n"])
def test_a_client_that_stops_sending_is_closed_after_the_idle_timeout(
    server: tuple[str, int], sent: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chef_backend.leader.http.IDLE_TIMEOUT_SECONDS", 0.3)
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(sent)
        assert sock.recv(65536) == b""  # closed by the server, not by our 5 s timeout
    assert http_status(f"http://{server[0]}:{server[1]}/leader", 2) == 503
