"""The leader manager's HTTP endpoint on port 7331.

`GET /leader` answers 200 only on the ready leader whose lease is still alive by this node's own
clock, and 503 everywhere else; HAProxy on each frontend routes to the node answering 200. The
answer comes from memory (never from etcd or PostgreSQL), so it stays fast whatever those do.
`GET /status` returns this node's last status as JSON (the ctl uses it, e.g. to measure clock
drift); `GET /metrics` the Prometheus metrics (chef_backend.metrics), also from memory. One
asyncio loop on its own thread serves every connection; h11 parses HTTP/1.1 and
bounds request sizes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import h11
from prometheus_client import CONTENT_TYPE_LATEST

from chef_backend.leader.timing import clock
from chef_backend.metrics import Metrics, Sampler

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024
IDLE_TIMEOUT_SECONDS = 60.0
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 1024 * 1024
# Descriptors kept free for etcd, PostgreSQL and logging however many clients connect.
RESERVED_FDS = 128


def connection_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return how many HTTP clients fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(16, min(16384, soft - RESERVED_FDS))


@dataclass
class Published:
    """What the endpoint serves; written by the control loop, read by the HTTP thread."""

    ready_until: float = 0.0  # timing.clock() until which the last tick's "ready" holds
    lease_deadline: float = 0.0  # timing.clock() after which the lease may be gone
    status: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "status" and value:  # each tick's status document moves the metrics' counters
            self.metrics.observe(value)

    def is_leader(self) -> bool:
        now = clock()
        return now < self.ready_until and now < self.lease_deadline


async def _read(reader: asyncio.StreamReader) -> bytes:
    """The next bytes from a client, or TimeoutError after IDLE_TIMEOUT_SECONDS (a timeout scope
    costs less than wait_for's task per read, which counts at HAProxy's check rates)."""
    async with asyncio.timeout(IDLE_TIMEOUT_SECONDS):
        return await reader.read(8192)


class HttpServer:
    def __init__(self, published: Published, host: str, port: int) -> None:
        self.published = published
        self.host, self.port = host, port
        self._connections = 0
        self._max_connections = connection_limit()
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Serve on a daemon thread; raises if the port cannot be bound."""
        Sampler(self.published.metrics).start()
        threading.Thread(target=self._thread, name="http", daemon=True).start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error

    def _thread(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True, backlog=1024)
        self._started.set()
        async with server:
            await server.serve_forever()

    def _route(self, method: bytes, target: bytes) -> tuple[int, bytes, bytes]:
        path = target.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, b"text/plain", b"method not allowed\n"
        if path == b"/leader":
            if self.published.is_leader():
                return 200, b"text/plain", b"leader\n"
            return 503, b"text/plain", b"not leader\n"
        if path == b"/metrics":
            body = self.published.metrics.render(self.published.is_leader(), self.published.lease_deadline)
            return 200, CONTENT_TYPE_LATEST.encode(), body
        if path == b"/status":
            doc = dict(self.published.status, time=time.time(), leader=self.published.is_leader())
            return 200, b"application/json", json.dumps(doc).encode()
        return 404, b"text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self._max_connections:
            writer.close()
            return
        self._connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        try:
            await self._converse(conn, reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections -= 1
            writer.close()

    async def _converse(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._error_response(conn, writer, exc.error_status_hint)
                return
            if event is h11.NEED_DATA:
                data = await _read(reader)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                if event.http_version not in (b"1.0", b"1.1"):
                    await self._error_response(conn, writer, 505)
                    return
                try:
                    status, ctype, body = self._route(event.method, event.target)
                except Exception:  # never let one request take the connection down unanswered
                    log.exception("answering %s %s", event.method, event.target)
                    status, ctype, body = 500, b"text/plain", b"internal error\n"
                # Drain (and bound) any request body before answering.
                received = 0
                while True:
                    try:
                        nxt = conn.next_event()
                    except h11.RemoteProtocolError as exc:
                        await self._error_response(conn, writer, exc.error_status_hint)
                        return
                    if nxt is h11.NEED_DATA:
                        data = await _read(reader)
                        conn.receive_data(data)
                        continue
                    if isinstance(nxt, h11.EndOfMessage):
                        break
                    if isinstance(nxt, h11.Data):
                        received += len(nxt.data)
                        if received > MAX_REQUEST_BYTES:
                            await self._error_response(conn, writer, 413, reader)
                            return
                headers = [
                    (b"content-type", ctype),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                if event.method != b"HEAD":
                    writer.write(conn.send(h11.Data(data=body)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
            elif isinstance(event, h11.ConnectionClosed):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()

    @staticmethod
    async def _error_response(
        conn: h11.Connection, writer: asyncio.StreamWriter, status: int, reader: asyncio.StreamReader | None = None
    ) -> None:
        """Answer `status` and close. With `reader`, linger: read and drop what the client still
        sends for a moment, so that closing with unread data (a TCP reset) does not destroy the
        answer before the client reads it."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"bad request ({status})\n".encode()
        try:
            writer.write(
                conn.send(
                    h11.Response(
                        status_code=status,
                        headers=[(b"content-length", str(len(body)).encode()), (b"connection", b"close")],
                    )
                )
            )
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except h11.LocalProtocolError:
            return
        if reader is not None and writer.can_write_eof():
            writer.write_eof()
            deadline = time.monotonic() + LINGER_SECONDS
            discarded = 0
            while discarded < LINGER_MAX_BYTES and (left := deadline - time.monotonic()) > 0:
                chunk = await asyncio.wait_for(reader.read(65536), left)
                if not chunk:
                    break
                discarded += len(chunk)
