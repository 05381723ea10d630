"""Fixtures of the reliability tests: a private TorchServe + gunicorn to break, and a load helper.

The destructive tests never touch the session's shared `torchserve`: they get their own instance
(1 worker per model, the archives the session fixture built) and the web UI under gunicorn with
the repository's config/gunicorn.conf.py, both on free loopback ports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from stack.gunicorn import Gunicorn, clean_environ
from stack.launcher import Launcher
from stack.ports import free_ports
from stack.torchserve import TorchServe
from tests.helpers import LiveTorchServe, loopback_overrides
from tests.webui.conftest import drawn_zero


def digit_png(size: int = 280) -> bytes:
    """A canvas-like PNG every model input check accepts: a thick dark '0' drawn on white."""
    return drawn_zero(size)


@dataclass
class Outcome:
    """One request made under load: when it started, how long it took, what came back."""

    started: float  # time.monotonic()
    seconds: float
    status: int | str  # HTTP status, or the exception's name
    body: Any = None  # parsed JSON, or None


@dataclass
class Load:
    """`clients` threads calling `send` back to back until stopped; a context manager."""

    send: Callable[[requests.Session], requests.Response]
    clients: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = self.send(session)
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    status: int | str = response.status_code
                except requests.RequestException as exc:
                    status, body = type(exc).__name__, None
                self.outcomes.append(Outcome(started, time.monotonic() - started, status, body))

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Poll `condition` until true; returns the monotonic time it became true (fails on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout:.0f} s")


@dataclass
class LiveStack:
    """A private TorchServe and the gunicorn web UI in front of it."""

    server: TorchServe
    ui: Gunicorn

    def predict(self, session: requests.Session, data: bytes, timeout: float = 30):
        """POST /api/predict with a multipart upload, as the upload page does."""
        return session.post(
            f"{self.ui.url}/api/predict",
            files={"file": ("digit.png", data, "image/png")},
            timeout=timeout,
        )

    def worker_pids(self, model: str) -> list[int]:
        """Pids of a model's READY workers, from the management API."""
        workers = self.server.describe(model)[0].get("workers") or []
        return [int(w["pid"]) for w in workers if w.get("status") == "READY" and w.get("pid")]


@pytest.fixture(scope="module")
def stack(
    torchserve: LiveTorchServe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """A TorchServe of our own (1 worker per model) and gunicorn in front, stopped afterwards."""
    work = tmp_path_factory.mktemp("reliability")
    server = TorchServe(
        work / "torchserve",
        torchserve.server.model_store,
        overrides={**loopback_overrides(), "default_workers_per_model": "1"},
        environ=clean_environ(),
    )
    (port,) = free_ports(1)
    launcher = Launcher(
        server, f"127.0.0.1:{port}", ui_log=work / "gunicorn.log", front_door=False
    )  # gunicorn itself: these tests break the app and TorchServe, not the front door
    with launcher as launched:
        yield LiveStack(server, launched.ui)
