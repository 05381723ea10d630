"""Load shedding: a bounded number of predictions in flight per process, the rest refused at once.

`/api/predict` and `/api/explain` take slots of a non-blocking weighted semaphore for as long as
they run: one slot, plus one per MiB of the request body (decoding a 6 MB photo costs the models
a hundred times what a 28×28 PNG does), at most all but one. When too few are free the request
is answered 503 with Retry-After straight away rather than queued behind work that would time
out anyway: with the default 6 slots a process runs six drawings at once, or one phone photo
and one drawing.
`/api/health` and the pages take no slot, so with MAX_IN_FLIGHT below gunicorn's thread count
there are always threads left for them.

Costly images (recognition/limits.py: a photo-sized body, or a header declaring a megapixel or
more) also take one of COSTLY_IN_FLIGHT lanes shared by every process of the server: lock files
in LANE_DIR (gunicorn's master makes one, config/gunicorn.conf.py), taken with a non-blocking
`flock`, which the kernel also releases when a worker dies. Without a lane: 503 at once. So at
most one costly image is decoded by each model at a time and a drawing waits behind one, not
behind a batch of eight (docs/performance.md, hostile load).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from flask import Flask, Response, current_app, g, jsonify, request

from recognition.header import declared_size
from recognition.limits import COSTLY_BYTES, COSTLY_PIXELS, JPEG_DRAFT_AREA

log = logging.getLogger(__name__)

EXTENSION = "in_flight"
LANES = "costly_lanes"
SHED_ENDPOINTS = frozenset({"api.predict", "api.explain"})
RETRY_AFTER_SECONDS = 1


SLOT_BYTES = 1024 * 1024  # request bytes that cost one more slot


class InFlight:
    """At most `limit` slots taken at a time; `try_enter` never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()

    def cost(self, body_bytes: int | None) -> int:
        """Slots a request of `body_bytes` takes: 1 + 1 per MiB, at most all but one (so a
        drawing still fits beside a photo), the most when the size is unknown."""
        most = max(1, self.limit - 1)
        if body_bytes is None:
            return most
        return min(most, 1 + body_bytes // SLOT_BYTES)

    def try_enter(self, cost: int = 1) -> bool:
        """Take `cost` slots if that many are free; False at once otherwise."""
        with self._lock:
            if self.taken + cost > self.limit:
                return False
            self.taken += cost
            return True

    def leave(self, cost: int = 1) -> None:
        """Give `cost` slots back."""
        with self._lock:
            self.taken = max(0, self.taken - cost)


def is_costly(data: bytes) -> bool:
    """Whether an image is costly to decode: a large body, or many declared pixels."""
    if len(data) >= COSTLY_BYTES:
        return True
    declared = declared_size(data)
    if declared is None:
        return False
    kind, width, height = declared
    pixels = width * height // (JPEG_DRAFT_AREA if kind == "JPEG" else 1)
    return pixels >= COSTLY_PIXELS


class Lanes:
    """`count` lanes shared by every process using `directory`; `try_take` never blocks."""

    def __init__(self, directory: Path, count: int) -> None:
        self.paths = [directory / f"costly-{i}.lock" for i in range(count)]

    def try_take(self) -> int | None:
        """A file descriptor holding a free lane, or None when every lane is taken."""
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    @staticmethod
    def give_back(fd: int) -> None:
        """Free the lane held by `fd` (closing it drops the lock)."""
        os.close(fd)


def admit(data: bytes) -> bool:
    """For a prediction's image: True when it may run now (cheap, or a costly lane was free,
    held until the request ends); False when it must be answered busy_response()."""
    if not is_costly(data):
        return True
    fd = current_app.extensions[LANES].try_take()
    if fd is None:
        log.warning("shedding %s: every costly-image lane is taken", request.path)
        return False
    g.costly_lane = fd
    return True


def busy_response() -> Response:
    """503 JSON with Retry-After: the UI is at its limit of predictions in flight."""
    response = jsonify(error="the web UI is busy: try again shortly", status=503)
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


DRAIN_CHUNK = 1024 * 1024


def drain_body() -> None:
    """Read and drop the request body, so gunicorn keeps the connection and the proxy sending it
    (nginx, on loopback, with the body already buffered) is not cut off mid-body into a 502."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if length is None or (limit is not None and length > limit):
        return  # unknown or refused size: gunicorn closes the connection after the answer
    while request.stream.read(DRAIN_CHUNK):
        pass


def _enter() -> Response | None:
    """Before a prediction: take its slots, or answer 503 without running the view."""
    if request.endpoint not in SHED_ENDPOINTS:
        return None
    slots: InFlight = current_app.extensions[EXTENSION]
    cost = slots.cost(request.content_length)
    if not slots.try_enter(cost):
        log.warning("shedding %s: %d of %d slots taken", request.path, slots.taken, slots.limit)
        drain_body()
        return busy_response()
    g.in_flight_cost = cost
    return None


def _leave(_exc: BaseException | None) -> None:
    """After the request (also when it failed): give back the slots it took."""
    cost = g.pop("in_flight_cost", 0)
    if cost:
        current_app.extensions[EXTENSION].leave(cost)
    lane = g.pop("costly_lane", None)
    if lane is not None:
        Lanes.give_back(lane)


def init_app(app: Flask) -> None:
    """One weighted semaphore of MAX_IN_FLIGHT slots per process, taken by the prediction views,
    and COSTLY_IN_FLIGHT lanes in LANE_DIR (a directory of this process's own when unset)."""
    app.extensions[EXTENSION] = InFlight(app.config["MAX_IN_FLIGHT"])
    directory = app.config.get("LANE_DIR")
    if not directory:  # a single process (tests, `flask run`): lanes of its own
        directory = tempfile.mkdtemp(prefix="mnist-serve-lanes-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    app.extensions[LANES] = Lanes(Path(directory), app.config["COSTLY_IN_FLIGHT"])
    app.before_request(_enter)
    app.teardown_request(_leave)
