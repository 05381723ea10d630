"""The web UI's settings: one set of defaults, each overridable by a `WEBUI_*` environment variable.

    WEBUI_INFERENCE_URL    TorchServe inference API          http://127.0.0.1:8080
    WEBUI_MANAGEMENT_URL   TorchServe management API         http://127.0.0.1:8081
    WEBUI_MLP_MODEL        registered name of the MLP        mnist_mlp
    WEBUI_CNN_MODEL        registered name of the CNN        mnist_cnn
    WEBUI_KEY_FILE         TorchServe's key_file.json        <repo>/run/torchserve/key_file.json
    WEBUI_INFERENCE_KEY    fixed inference key (else read from the key file)
    WEBUI_MANAGEMENT_KEY   fixed management key (else read from the key file)
    WEBUI_API_KEY          fixed token-API key (else read from the key file)
    WEBUI_CONNECT_TIMEOUT  seconds to open a connection to TorchServe       0.5
    WEBUI_READ_TIMEOUT     seconds to wait for a prediction                 5
    WEBUI_HEALTH_TIMEOUT   seconds to wait for a management describe        2
    WEBUI_POOL_SIZE        pooled keep-alive connections per TorchServe host 32
    WEBUI_MAX_UPLOAD_MB    largest image accepted, in MiB                   10
    WEBUI_MAX_IN_FLIGHT    predictions/explanations at once per process, beyond it 503
                           (default: GUNICORN_THREADS − HEALTH_RESERVE, i.e. 8 − 2 = 6)
    WEBUI_COSTLY_IN_FLIGHT costly images (photos, ≥ 1 MP) at once, all processes   1
    WEBUI_LANE_DIR         directory of the costly-image lanes, shared by the processes
                           (gunicorn's master makes one; unset: one per process)

A bad value fails at start-up with a message naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from recognition.catalog import spec
from recognition.limits import COSTLY_IN_FLIGHT, MAX_IMAGE_BYTES, MIB, max_request_bytes
from stack.paths import DEFAULT_KEY_FILE

# gunicorn threads per process (config/gunicorn.conf.py's default; GUNICORN_THREADS sets both)
# and how many of them predictions leave free for /api/health and the pages.
GUNICORN_THREADS = 8
HEALTH_RESERVE = 2

DEFAULTS: dict[str, Any] = {
    "INFERENCE_URL": "http://127.0.0.1:8080",
    "MANAGEMENT_URL": "http://127.0.0.1:8081",
    "MLP_MODEL": spec("mlp").name,
    "CNN_MODEL": spec("cnn").name,
    "KEY_FILE": str(DEFAULT_KEY_FILE),
    "INFERENCE_KEY": None,
    "MANAGEMENT_KEY": None,
    "API_KEY": None,
    "CONNECT_TIMEOUT": 0.5,
    "READ_TIMEOUT": 5.0,
    "HEALTH_TIMEOUT": 2.0,
    "POOL_SIZE": 32,
    "MAX_UPLOAD_MB": MAX_IMAGE_BYTES / MIB,
    "THREADS": GUNICORN_THREADS,
    "MAX_IN_FLIGHT": None,  # None: derived from THREADS
    "COSTLY_IN_FLIGHT": COSTLY_IN_FLIGHT,
    "LANE_DIR": None,
}


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a positive integer")
    return number


def _name(value: str) -> str:
    if not value or not value.replace("_", "").replace("-", "").isalnum():
        raise ValueError("must be a model name made of letters, digits, '-' and '_'")
    return value


def _text(value: str) -> str | None:
    return value or None


PARSERS: dict[str, Callable[[str], Any]] = {
    "INFERENCE_URL": _url,
    "MANAGEMENT_URL": _url,
    "MLP_MODEL": _name,
    "CNN_MODEL": _name,
    "KEY_FILE": _text,
    "INFERENCE_KEY": _text,
    "MANAGEMENT_KEY": _text,
    "API_KEY": _text,
    "CONNECT_TIMEOUT": _positive_float,
    "READ_TIMEOUT": _positive_float,
    "HEALTH_TIMEOUT": _positive_float,
    "POOL_SIZE": _positive_int,
    "MAX_UPLOAD_MB": _positive_float,
    "MAX_IN_FLIGHT": _positive_int,
    "COSTLY_IN_FLIGHT": _positive_int,
    "LANE_DIR": _text,
}


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from `WEBUI_*` variables over the defaults; raises ValueError on a bad value."""
    settings = dict(DEFAULTS)
    for key, parse in PARSERS.items():
        raw = environ.get(f"WEBUI_{key}")
        if raw is None:
            continue
        try:
            settings[key] = parse(raw.strip())
        except ValueError as exc:
            raise ValueError(f"WEBUI_{key}={raw!r}: {exc}") from exc
    if environ.get("GUNICORN_THREADS"):
        settings["THREADS"] = _positive_int(environ["GUNICORN_THREADS"].strip())
    return derive(settings)


def derive(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Add the values computed from others: model names, Flask's body limit, in-flight limit."""
    out = dict(settings)
    out["MODELS"] = {"mlp": out["MLP_MODEL"], "cnn": out["CNN_MODEL"]}
    out["MAX_IMAGE_BYTES"] = int(out["MAX_UPLOAD_MB"] * MIB)
    out["MAX_CONTENT_LENGTH"] = max_request_bytes(out["MAX_IMAGE_BYTES"])
    if out.get("MAX_IN_FLIGHT") is None:
        out["MAX_IN_FLIGHT"] = max_in_flight(out["THREADS"])
    return out


def max_in_flight(threads: int) -> int:
    """Predictions one process runs at once: its threads less those kept for health and pages."""
    return max(1, threads - HEALTH_RESERVE)
