"""Closed-loop HTTP load generator for benchmarks/perf.py, run in its own process.

    python -m benchmarks.perf_load < job.json > results.json

A job is one HTTP target and its cells (client counts, see benchmarks.perf_cell):

    {"kind": "http", "host": ..., "port": ..., "method": "POST", "path": ..., "headers": {...},
     "body_file": ..., "expect": "<text a good answer contains>", "timeout": 10}

Clients are asyncio coroutines writing pre-built requests on keep-alive connections: about a
tenth of a millisecond of CPU per request, so the load generator takes little of the CPU the
server needs. A request counts as an error unless it is a 200 whose body holds `expect`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.perf_cell import Phase, Recorder, serve_job


def build_request(
    method: str, host: str, port: int, path: str, *, headers: dict[str, str], body: bytes
) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one response: Content-Length, chunked, or until EOF."""
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(part[:-2] for part in parts)
    else:
        return status, await reader.read(), False
    return status, body, headers.get("connection", "").lower() != "close"


async def http_client(
    host: str, port: int, requests: list[bytes], *, expect: bytes, timeout: float, rec: Recorder
) -> None:
    """One client: requests back to back on a keep-alive connection, reconnecting when closed.

    With several requests it sends them in turn.
    """
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    sent = 0
    while rec.take():
        request = requests[sent % len(requests)]
        sent += 1
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout
                )
            writer.write(request)
            status, body, keep = await asyncio.wait_for(read_response(reader), timeout)
            ms = 1000 * (time.perf_counter() - start)
            ok = status == 200 and expect in body
            rec.record(str(status), ms, ok, body.decode("utf-8", "replace"))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            rec.record(type(exc).__name__, 1000 * (time.perf_counter() - start), False, str(exc))
            keep = False
        if not keep and writer is not None:
            writer.close()
            writer = reader = None
    if writer is not None:
        writer.close()


def _rotate(items: list[bytes], start: int) -> list[bytes]:
    """The items starting at `start` (modulo their number), then the ones before it."""
    start %= len(items)
    return items[start:] + items[:start]


def http_phase(job: dict[str, Any]) -> Phase:
    """A function running `clients` HTTP clients against the job's target until `rec` stops.

    `body_file` with `headers` (one body), or `bodies`: a list of {"file": ..., "headers": {...}}
    sent in turn, client i starting at the i-th, so a mix is sent in every proportion at once.
    """
    bodies = job.get("bodies") or [{"file": job["body_file"], "headers": job["headers"]}]
    host, port, path = job["host"], job["port"], job["path"]
    requests = [
        build_request(
            job.get("method", "POST"),
            host,
            port,
            path,
            headers=body["headers"],
            body=Path(body["file"]).read_bytes(),
        )
        for body in bodies
    ]
    expect, timeout = job.get("expect", "").encode(), job.get("timeout", 10)

    async def clients_of(clients: int, rec: Recorder) -> None:
        turns = (_rotate(requests, i) for i in range(clients))
        await asyncio.gather(
            *(http_client(host, port, t, expect=expect, timeout=timeout, rec=rec) for t in turns)
        )

    return lambda clients, rec: asyncio.run(clients_of(clients, rec))


if __name__ == "__main__":
    sys.exit(serve_job(http_phase))
