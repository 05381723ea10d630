"""Load shedding: a bounded number of predictions in flight per process, the rest refused at once.

`/api/predict` and `/api/explain` each take a slot of a non-blocking semaphore for as long as
they run; when none is free the request is answered 503 with Retry-After straight away rather
than queued behind work that would time out anyway. `/api/health` and the pages take no slot,
so with MAX_IN_FLIGHT below gunicorn's thread count there are always threads left for them.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, current_app, g, jsonify, request

log = logging.getLogger(__name__)

EXTENSION = "in_flight"
SHED_ENDPOINTS = frozenset({"api.predict", "api.explain"})
RETRY_AFTER_SECONDS = 1


class InFlight:
    """At most `limit` holders at a time; `try_enter` never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def try_enter(self) -> bool:
        """Take a slot if one is free; False at once otherwise."""
        return self._slots.acquire(blocking=False)

    def leave(self) -> None:
        """Give a slot back."""
        self._slots.release()


def busy_response() -> Response:
    """503 JSON with Retry-After: the UI is at its limit of predictions in flight."""
    response = jsonify(error="the web UI is busy: try again shortly", status=503)
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _enter() -> Response | None:
    """Before a prediction: take a slot, or answer 503 without running the view."""
    if request.endpoint not in SHED_ENDPOINTS:
        return None
    if not current_app.extensions[EXTENSION].try_enter():
        log.warning(
            "shedding %s: %d predictions in flight",
            request.path,
            current_app.config["MAX_IN_FLIGHT"],
        )
        return busy_response()
    g.in_flight_slot = True
    return None


def _leave(_exc: BaseException | None) -> None:
    """After the request (also when it failed): give back the slot it took."""
    if g.pop("in_flight_slot", False):
        current_app.extensions[EXTENSION].leave()


def init_app(app: Flask) -> None:
    """One semaphore of MAX_IN_FLIGHT slots per process, taken by the prediction views."""
    app.extensions[EXTENSION] = InFlight(app.config["MAX_IN_FLIGHT"])
    app.before_request(_enter)
    app.teardown_request(_leave)
