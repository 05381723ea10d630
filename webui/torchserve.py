"""The web UI's view of TorchServe: both models called concurrently, answers made `ModelReply`s.

`init_app(app)` builds one `ModelsClient` per process from the app's configuration, over the
project's TorchServe client (`tsclient`: pooled keep-alive connections, keys, renewal); views
reach it with `get_client()`. Every call returns a `ModelReply` or a health summary and never
raises for network trouble, so a view only merges what came back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import requests
from flask import Flask, current_app

from tsclient.client import TorchServeClient
from tsclient.keys import KeyStore
from tsclient.protocol import is_key_rejection, worker_statuses
from webui.merge import CLIENT_ERRORS, ModelReply, valid_answer

log = logging.getLogger(__name__)

EXTENSION = "torchserve"
MAX_MESSAGE = 300  # longest handler message passed on to a user

UNAVAILABLE = {
    404: "the model is not registered in TorchServe",
    503: "the model has no worker available",
    # TorchServe 0.12 answers 507 "Worker died." to requests in flight when a worker crashes
    # (and when it runs out of memory); it starts a new worker by itself.
    507: "the model's worker died or ran out of memory; TorchServe is restarting it",
}


def _message(response: requests.Response) -> str | None:
    """The error text of a TorchServe or handler answer, trimmed; None when there is none."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    text = body.get("error") or body.get("message")
    return str(text)[:MAX_MESSAGE] if text else None


def reply_from_response(response: requests.Response, latency_ms: float) -> ModelReply:
    """Classify one inference answer: a valid prediction, a rejected image, or a model down."""
    status = response.status_code
    if status == 200:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if valid_answer(answer):
            return ModelReply(200, latency_ms, answer)
        return ModelReply(502, latency_ms, error="the model gave an invalid answer")
    if status in CLIENT_ERRORS:
        return ModelReply(status, latency_ms, error=_message(response) or "the image was rejected")
    error = UNAVAILABLE.get(status, f"the model failed (TorchServe answered {status})")
    return ModelReply(status, latency_ms, error=error)


def summarize_workers(name: str, response: requests.Response) -> dict[str, Any]:
    """A model's health from a describe answer: up when at least one worker is READY."""
    try:
        statuses = worker_statuses(response.json())
    except ValueError:
        return {"model": name, "status": "down", "error": "invalid describe answer"}
    ready = statuses.count("READY")
    summary: dict[str, Any] = {
        "model": name,
        "status": "ok" if ready else "down",
        "workers": {"ready": ready, "total": len(statuses)},
    }
    if not ready:
        summary["error"] = "no worker is READY" if statuses else "no worker is running"
    return summary


class ModelsClient:
    """Both models of one TorchServe, as the web UI's views need them."""

    def __init__(self, config: dict[str, Any], keys: KeyStore) -> None:
        self.models: dict[str, str] = dict(config["MODELS"])
        self.connect_timeout = config["CONNECT_TIMEOUT"]
        self.read_timeout = config["READ_TIMEOUT"]
        self.health_timeout = config["HEALTH_TIMEOUT"]
        self.torchserve = TorchServeClient(
            config["INFERENCE_URL"],
            config["MANAGEMENT_URL"],
            keys,
            connect_timeout=self.connect_timeout,
            timeout=self.health_timeout,
            pool_size=config["POOL_SIZE"],
        )

    def close(self) -> None:
        """Release the thread pool and the pooled connections."""
        self.torchserve.close()

    def predict(self, role: str, data: bytes) -> ModelReply:
        """Send image bytes to one model; never raises for network trouble."""
        headers = {"Content-Type": "application/octet-stream", "X-Return-Image": "1"}
        return self._call(self.torchserve.predict, role, data, headers, "answer")

    def explain(self, role: str, data: bytes) -> ModelReply:
        """Ask one model for an attribution map of image bytes; never raises for network trouble."""
        headers = {"Content-Type": "application/octet-stream"}
        return self._call(self.torchserve.explain, role, data, headers, "explain")

    def _call(
        self,
        send: Callable[..., requests.Response],
        role: str,
        data: bytes,
        headers: dict[str, str],
        verb: str,
    ) -> ModelReply:
        """One inference-API call of one model, classified as a `ModelReply`."""
        name = self.models[role]
        start = time.perf_counter()
        try:
            response = send(name, data, headers, self.read_timeout)
        except requests.Timeout:
            error = f"the model did not {verb} within {self.read_timeout:g} s"
            return ModelReply(0, _ms(start), error=error)
        except requests.RequestException as exc:
            log.warning("%s unreachable: %s", name, type(exc).__name__)
            return ModelReply(0, _ms(start), error="TorchServe is unreachable")
        latency = _ms(start)
        if is_key_rejection(response):
            log.error("TorchServe rejected the inference key and no new one could be had")
            return ModelReply(503, latency, error="TorchServe rejected the inference key")
        reply = reply_from_response(response, latency)
        if not reply.ok and not reply.rejected_input:
            log.warning("%s answered %s", name, response.status_code)
        return reply

    def predict_all(self, data: bytes) -> dict[str, ModelReply]:
        """Every model's reply to the same image, the calls made concurrently."""
        futures = {role: self.torchserve.submit(self.predict, role, data) for role in self.models}
        # The connect and read timeouts bound each call; this bounds the whole wait as well.
        deadline = time.monotonic() + 2 * self.connect_timeout + self.read_timeout + 1.0
        replies = {}
        for role, future in futures.items():
            try:
                replies[role] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                error = f"the model did not answer within {self.read_timeout:g} s"
                replies[role] = ModelReply(0, 1000 * self.read_timeout, error=error)
        return replies

    def describe(self, role: str) -> dict[str, Any]:
        """A model's worker status from the management API's describe (read-only)."""
        name = self.models[role]
        try:
            response = self.torchserve.describe_response(name, self.health_timeout)
        except requests.RequestException as exc:
            log.warning("management API unreachable: %s", type(exc).__name__)
            return {"model": name, "status": "down", "error": "TorchServe is unreachable"}
        if response.status_code != 200:
            error = UNAVAILABLE.get(
                response.status_code, f"describe answered {response.status_code}"
            )
            return {"model": name, "status": "down", "error": error}
        return summarize_workers(name, response)

    def health(self) -> dict[str, dict[str, Any]]:
        """Every model's worker status, the describes made concurrently."""
        futures = {role: self.torchserve.submit(self.describe, role) for role in self.models}
        return {role: future.result() for role, future in futures.items()}


def _ms(start: float) -> float:
    return 1000 * (time.perf_counter() - start)


def init_app(app: Flask) -> None:
    """Build this process's client from the app's configuration."""
    config = app.config
    keys = KeyStore(
        config["KEY_FILE"],
        {
            "inference": config["INFERENCE_KEY"],
            "management": config["MANAGEMENT_KEY"],
            "api": config["API_KEY"],
        },
    )
    app.extensions[EXTENSION] = ModelsClient(dict(config), keys)


def get_client() -> ModelsClient:
    """The current app's TorchServe client."""
    return current_app.extensions[EXTENSION]
