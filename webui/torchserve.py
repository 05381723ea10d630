"""A small TorchServe client: both models called concurrently over pooled keep-alive connections.

`init_app(app)` builds one `TorchServeClient` per process from the app's configuration;
views reach it with `get_client()`. Every call returns a `ModelReply` and never raises for
network trouble, so a view only merges what came back.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import requests
from flask import Flask, current_app
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from webui.merge import CLIENT_ERRORS, ModelReply, valid_answer
from webui.tokens import KeyStore

log = logging.getLogger(__name__)

EXTENSION = "torchserve"
MAX_MESSAGE = 300  # longest handler message passed on to a user

# TorchServe 0.12 answers a missing, wrong or expired key with 400 InvalidKeyException.
TOKEN_REJECTION = "InvalidKeyException"

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


def is_token_rejection(response: requests.Response) -> bool:
    """True when TorchServe refused the request for its key rather than for its content."""
    if response.status_code not in {400, 401, 403}:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and (
        body.get("type") == TOKEN_REJECTION or "Token Authentication failed" in str(body)
    )


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


class TorchServeClient:
    """Calls the inference and management APIs of one TorchServe with current keys."""

    def __init__(self, config: dict[str, Any], keys: KeyStore) -> None:
        self.inference_url = config["INFERENCE_URL"]
        self.management_url = config["MANAGEMENT_URL"]
        self.models: dict[str, str] = dict(config["MODELS"])
        self.connect_timeout = config["CONNECT_TIMEOUT"]
        self.read_timeout = config["READ_TIMEOUT"]
        self.health_timeout = config["HEALTH_TIMEOUT"]
        self.keys = keys
        pool = config["POOL_SIZE"]
        self.session = requests.Session()
        # Retry only connections that were never established (safe for POST); a read failure
        # is reported at once rather than doubling the wait.
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # never route loopback traffic through a proxy
        self.executor = ThreadPoolExecutor(max_workers=pool, thread_name_prefix="torchserve")

    def close(self) -> None:
        """Release the thread pool and the pooled connections."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    def _send(self, method: str, url: str, kind: str, timeout: float, **kwargs: Any):
        """One request with the current `kind` key, retried once with a renewed key if refused."""
        key = self.keys.get(kind)
        response = self._request(method, url, key, timeout, **kwargs)
        if not is_token_rejection(response):
            return response
        renewed = self.keys.renew(kind, key, self._issue_key)
        if renewed is None:
            return response
        return self._request(method, url, renewed, timeout, **kwargs)

    def _request(
        self, method: str, url: str, key: str | None, timeout: float, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.session.request(
            method, url, headers=headers, timeout=(self.connect_timeout, timeout), **kwargs
        )

    def _issue_key(self, kind: str) -> bool:
        """Ask TorchServe's token API to issue a new `kind` key (it rewrites its key file)."""
        api_key = self.keys.get("API")
        if not api_key:
            return False
        try:
            response = self.session.get(
                f"{self.management_url}/token",
                params={"type": kind},
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=(self.connect_timeout, self.health_timeout),
            )
        except requests.RequestException as exc:
            log.warning("cannot ask TorchServe for a new %s key: %s", kind, type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("TorchServe refused to issue a %s key (%s)", kind, response.status_code)
        return response.status_code == 200

    def predict(self, role: str, data: bytes) -> ModelReply:
        """Send image bytes to one model; never raises for network trouble."""
        url = f"{self.inference_url}/predictions/{self.models[role]}"
        headers = {"Content-Type": "application/octet-stream", "X-Return-Image": "1"}
        start = time.perf_counter()
        try:
            response = self._send(
                "POST", url, "inference", self.read_timeout, data=data, headers=headers
            )
        except requests.Timeout:
            error = f"the model did not answer within {self.read_timeout:g} s"
            return ModelReply(0, _ms(start), error=error)
        except requests.RequestException as exc:
            log.warning("%s unreachable: %s", self.models[role], type(exc).__name__)
            return ModelReply(0, _ms(start), error="TorchServe is unreachable")
        latency = _ms(start)
        if is_token_rejection(response):
            log.error("TorchServe rejected the inference key and no new one could be had")
            return ModelReply(503, latency, error="TorchServe rejected the inference key")
        reply = reply_from_response(response, latency)
        if not reply.ok and not reply.rejected_input:
            log.warning("%s answered %s", self.models[role], response.status_code)
        return reply

    def explain(self, role: str, data: bytes) -> ModelReply:
        """Ask one model for an attribution map of image bytes; never raises for network trouble."""
        url = f"{self.inference_url}/explanations/{self.models[role]}"
        headers = {"Content-Type": "application/octet-stream"}
        start = time.perf_counter()
        try:
            response = self._send(
                "POST", url, "inference", self.read_timeout, data=data, headers=headers
            )
        except requests.Timeout:
            error = f"the model did not explain within {self.read_timeout:g} s"
            return ModelReply(0, _ms(start), error=error)
        except requests.RequestException as exc:
            log.warning("%s unreachable: %s", self.models[role], type(exc).__name__)
            return ModelReply(0, _ms(start), error="TorchServe is unreachable")
        if is_token_rejection(response):
            log.error("TorchServe rejected the inference key and no new one could be had")
            return ModelReply(503, _ms(start), error="TorchServe rejected the inference key")
        return reply_from_response(response, _ms(start))

    def predict_all(self, data: bytes) -> dict[str, ModelReply]:
        """Every model's reply to the same image, the calls made concurrently."""
        futures = {role: self.executor.submit(self.predict, role, data) for role in self.models}
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
        url = f"{self.management_url}/models/{name}"
        try:
            response = self._send("GET", url, "management", self.health_timeout)
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
        futures = {role: self.executor.submit(self.describe, role) for role in self.models}
        return {role: future.result() for role, future in futures.items()}


def summarize_workers(name: str, response: requests.Response) -> dict[str, Any]:
    """Count READY workers in a describe answer; a model is up when at least one is READY."""
    try:
        versions = response.json()
        workers = [w for version in versions for w in version.get("workers", [])]
        statuses = [str(w.get("status", "UNKNOWN")) for w in workers]
    except (ValueError, TypeError, AttributeError):
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
            "API": config["API_KEY"],
        },
    )
    app.extensions[EXTENSION] = TorchServeClient(dict(config), keys)


def get_client() -> TorchServeClient:
    """The current app's TorchServe client."""
    return current_app.extensions[EXTENSION]
