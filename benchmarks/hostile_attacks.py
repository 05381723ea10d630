"""Hostile clients on loopback, each bounded in time: slow headers, idle sockets, upload bursts.

Attackers send from their own loopback addresses (127.0.0.2, 127.0.0.3, …: all of 127/8 reaches
`lo` on Linux) so a per-client limit of the front door applies to them and not to the normal
client probing from 127.0.0.1, as on a real network. Every function stops by itself after
`seconds`; the probes record (start, seconds, status, JSON or not) per request. An attack runs in
its own process (`in_process`) so the probes' timings are not those of a GIL shared with it.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import json
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from PIL import Image, ImageDraw

from benchmarks import perf_jobs

T = TypeVar("T")
PROBE_TIMEOUT = 10.0  # seconds a probe waits for its answer (counted as failure beyond)
BOUNDARY = "hostile-load-boundary"


@dataclass(frozen=True)
class Outcome:
    """One request: when it started (monotonic), how long it took, what came back."""

    started: float
    seconds: float
    status: int | str  # HTTP status, or the exception's name
    json: bool  # the body parsed as JSON
    detail: str = ""  # the start of the body of an answer other than 200
    waited: float = 0.0  # seconds from the last byte of the request sent to the whole answer


def attacker_sources(count: int) -> list[str]:
    """`count` loopback source addresses other than 127.0.0.1 (127.0.0.2 onwards)."""
    return [f"127.0.{1 + i // 250}.{2 + i % 250}" for i in range(count)]


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def multipart(data: bytes, name: str = "digit.png", kind: str = "image/png") -> tuple[bytes, str]:
    """A multipart/form-data body with one file part, and its Content-Type."""
    return perf_jobs.multipart(data, name, kind, BOUNDARY)


def large_jpeg(width: int = 4000, height: int = 3000, quality: int = 75) -> bytes:
    """A phone-photo-sized JPEG (a dark digit on noisy paper): about 6 MB at 4000×3000."""
    noise = Image.effect_noise((width, height), 60).convert("RGB")
    draw = ImageDraw.Draw(noise)
    box = (width * 0.35, height * 0.2, width * 0.65, height * 0.8)
    draw.ellipse(box, outline=(10, 10, 10), width=width // 25)
    buffer = io.BytesIO()
    noise.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def request_once(
    url: str, path: str, body: bytes | None, content_type: str, source: str = "127.0.0.1"
) -> Outcome:
    """One request on a fresh connection from `source`; never raises."""
    host, port = host_port(url)
    started = sent = time.monotonic()
    connection = http.client.HTTPConnection(host, port, PROBE_TIMEOUT, source_address=(source, 0))
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.request("POST" if body is not None else "GET", path, body, headers)
        sent = time.monotonic()
        response = connection.getresponse()
        payload = response.read()
        status: int | str = response.status
        detail = "" if status == 200 else payload[:200].decode(errors="replace")
        try:
            json.loads(payload)
            is_json = True
        except ValueError:
            is_json = False
    except (OSError, http.client.HTTPException) as exc:
        status, is_json, detail = type(exc).__name__, False, str(exc)[:200]
    finally:
        connection.close()
    done = time.monotonic()
    return Outcome(started, done - started, status, is_json, detail, done - sent)


def repeat(send: Callable[[], Outcome], interval: float, seconds: float) -> list[Outcome]:
    """Call `send` every `interval` seconds (or back to back when 0) for `seconds`."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.monotonic()
        outcomes.append(send())
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    return outcomes


def _ready() -> bool:
    """Nothing: the first task of a fresh worker process, to know it has started."""
    return True


@contextlib.contextmanager
def in_process(work: Callable[..., T], *args: Any, **kwargs: Any) -> Iterator[Future[T]]:
    """Run `work(*args, **kwargs)` in a fresh process (its threads never take the GIL from the
    measuring process) once that process is up; the block gets its future."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        pool.submit(_ready).result(timeout=60)
        yield pool.submit(work, *args, **kwargs)


@contextlib.contextmanager
def in_background(work: Callable[[], object], threads: int = 1) -> Iterator[None]:
    """Run `work` in `threads` daemon threads for the duration of the block, then join them."""
    started = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    try:
        yield
    finally:
        for thread in started:
            thread.join(timeout=60)


def _open(url: str, source: str) -> socket.socket | None:
    """A connection from `source`, or None when the server refuses it."""
    try:
        sock = socket.create_connection(host_port(url), timeout=2, source_address=(source, 0))
    except OSError:
        return None
    sock.setblocking(False)
    return sock


def _send(sock: socket.socket | None, data: bytes) -> bool:
    """Send without blocking; False when the connection is gone (or not open)."""
    if sock is None:
        return False
    try:
        sock.send(data)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
    return True


def slow_headers(url: str, sockets: int, interval: float, seconds: float, sources: int = 10) -> int:
    """`sockets` connections each sending one more header line every `interval` s, reopened when
    the server closes them, for `seconds`; returns how many connections were opened."""
    addresses = itertools.cycle(attacker_sources(sources))
    start_line = b"POST /api/predict HTTP/1.1\r\nHost: attacker\r\nContent-Length: 10\r\n"
    pool = [_open(url, next(addresses)) for _ in range(sockets)]
    opened = sockets
    deadline = time.monotonic() + seconds
    for sock in pool:
        _send(sock, start_line)
    while time.monotonic() < deadline:
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        for i, sock in enumerate(pool):
            if not _send(sock, b"X-Slow: 1\r\n"):
                if sock is not None:
                    sock.close()
                pool[i] = _open(url, next(addresses))
                opened += 1
                _send(pool[i], start_line)
    for sock in pool:
        if sock is not None:
            sock.close()
    return opened


def idle_connections(url: str, sockets: int, seconds: float, sources: int = 10) -> int:
    """`sockets` connections that send nothing, reopened when closed, for `seconds`."""
    addresses = itertools.cycle(attacker_sources(sources))
    pool = [_open(url, next(addresses)) for _ in range(sockets)]
    opened = sockets
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        for i, sock in enumerate(pool):
            alive = sock is not None
            if alive:
                with contextlib.suppress(BlockingIOError):
                    alive = sock.recv(1, socket.MSG_PEEK) != b""
            if not alive:
                if sock is not None:
                    sock.close()
                pool[i] = _open(url, next(addresses))
                opened += 1
    for sock in pool:
        if sock is not None:
            sock.close()
    return opened


def upload_burst(
    url: str, clients: int, body: bytes, content_type: str, *, seconds: float, sources: int = 10
) -> list[Outcome]:
    """`clients` threads POSTing `body` to /api/predict back to back for `seconds`."""
    outcomes: list[Outcome] = []
    addresses = iter(itertools.cycle(attacker_sources(sources)))
    lock = threading.Lock()

    def client() -> None:
        with lock:
            source = next(addresses)
        sent = repeat(
            lambda: request_once(url, "/api/predict", body, content_type, source), 0.0, seconds
        )
        with lock:
            outcomes.extend(sent)

    with in_background(client, clients):
        pass
    return outcomes
