"""Signed GET throughput of a Chef API frontend: N keep-alive connections repeating one signed request.

    python bench/fe_signed_get.py --url http://127.0.0.21:8443 --key pivotal.pem --path /users/pivotal

Prints JSON: requests per second, latency percentiles (ms), errors. The request is signed once (a signature
stays valid for the 15 minutes of allowed clock skew), so the client spends its CPU on HTTP, not RSA.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization

from chef_server.ctl.client import sign_headers


async def worker(host: str, port: int, request: bytes, deadline: float, latencies: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode().strip())
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict:
    url = urllib.parse.urlsplit(args.url)
    with open(args.key, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    headers = sign_headers(key, args.user, "GET", args.path, b"")
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {url.netloc}\r\n" +
               "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + args.seconds
    await asyncio.gather(*(worker(url.hostname, url.port or 80, request, deadline, latencies, errors)
                           for _ in range(args.connections)))
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"path": args.path, "connections": args.connections, "seconds": args.seconds,
            "requests": len(latencies), "rps": round(len(latencies) / args.seconds, 1),
            "p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2), "errors": len(errors),
            "first_error": errors[0] if errors else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", default="pivotal")
    parser.add_argument("--path", default="/users/pivotal")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
