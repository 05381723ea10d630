"""Fixtures of the web UI tests: the app against a given TorchServe, free ports, a stub server."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from PIL import Image, ImageDraw

from stack.ports import free_ports
from webui import create_app


def drawn_zero(size: int = 280) -> bytes:
    """A canvas-like PNG: a hand-drawn-looking '0' (a thick dark ellipse) on white."""
    canvas = Image.new("L", (size, size), 255)
    box = (size * 0.32, size * 0.18, size * 0.68, size * 0.82)
    ImageDraw.Draw(canvas).ellipse(box, outline=20, width=max(2, size // 14))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def make_app(**settings: Any) -> Flask:
    """The app under test with the given settings over the defaults."""
    app = create_app({"TESTING": True, **settings})
    return app


@pytest.fixture(scope="module")
def live_app(torchserve) -> Iterator[Flask]:
    """The app on the session's real TorchServe, its client closed afterwards."""
    app = make_app(
        INFERENCE_URL=torchserve.inference_url,
        MANAGEMENT_URL=torchserve.management_url,
        KEY_FILE=str(torchserve.key_file),
    )
    yield app
    app.extensions["torchserve"].close()


@pytest.fixture
def closed_port() -> int:
    (port,) = free_ports(1)  # nobody listens on it
    return port


@pytest.fixture
def offline_app(closed_port, tmp_path) -> Iterator[Flask]:
    """The app pointed at a TorchServe that is not running."""
    url = f"http://127.0.0.1:{closed_port}"
    app = make_app(
        INFERENCE_URL=url, MANAGEMENT_URL=url, KEY_FILE=str(tmp_path / "no_key_file.json")
    )
    yield app
    app.extensions["torchserve"].close()


# A stub TorchServe, only for faults a real one cannot be made to show on demand.

Reply = tuple[int, Any]  # status, JSON body


@dataclass
class StubTorchServe:
    """Answers by path: `routes[path]` gives (status, body) for each request's headers."""

    routes: dict[str, Callable[[dict[str, str]], Reply]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        self.seen.append((method, path, headers))
        time.sleep(self.delays.get(path.split("?", maxsplit=1)[0], 0.0))
        route = self.routes.get(path.split("?", maxsplit=1)[0])
        if route is None:
            return 404, {"code": 404, "type": "ModelNotFoundException", "message": "not found"}
        return route(headers)


def _handler(stub: StubTorchServe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = stub.answer(self.command, self.path, dict(self.headers))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stub_torchserve() -> Iterator[StubTorchServe]:
    """A stub HTTP server on a free loopback port, stopped after the test."""
    stub = StubTorchServe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
