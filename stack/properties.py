"""TorchServe's configuration: config/config.properties, derived values, TS_* overrides.

`resolve_config` renders what a server starts with: the file's keys, then the values derived
from facts defined elsewhere (`max_request_size` from `recognition.limits`), then TS_<KEY>
environment variables, then explicit overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from recognition.limits import max_request_bytes

# Keys besides those in config.properties that TS_<KEY> may set.
EXTRA_OVERRIDABLE = ("number_of_gpu", "job_queue_size", "default_response_timeout", "vmargs")


def read_properties(text: str) -> dict[str, str]:
    """Parse Java properties text (key=value lines, # comments), keeping the file's order."""
    props = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def write_properties(props: Mapping[str, str]) -> str:
    """Java properties text of a mapping."""
    return "".join(f"{key}={value}\n" for key, value in props.items())


def derived() -> dict[str, str]:
    """Settings computed from facts defined once elsewhere (the largest request body)."""
    return {"max_request_size": str(max_request_bytes())}


def env_name(key: str) -> str:
    """The environment variable that overrides a configuration key: TS_<KEY>."""
    return f"TS_{key.upper()}"


def env_overrides(props: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The TS_<KEY> environment variables that override known configuration keys."""
    keys = [*props, *EXTRA_OVERRIDABLE]
    return {key: environ[env_name(key)] for key in keys if env_name(key) in environ}


def resolve_config(
    base: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """File values and derived ones, then TS_* environment overrides, then explicit overrides."""
    props = {**derived(), **base}
    props.update(env_overrides(props, environ or {}))
    props.update({key: str(value) for key, value in (overrides or {}).items()})
    return props


def url_of(address: str) -> str:
    """A client URL for a TorchServe bind address (0.0.0.0 is reached over loopback)."""
    parts = urlsplit(address)
    host = parts.hostname or "127.0.0.1"
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{parts.port}"


def bind_targets(props: Mapping[str, str]) -> list[tuple[str, int]]:
    """(host, port) of every listener the configuration asks for: HTTP APIs and gRPC."""
    targets = []
    for key in ("inference_address", "management_address", "metrics_address"):
        parts = urlsplit(props[key])
        targets.append((parts.hostname or "127.0.0.1", int(parts.port or 0)))
    for kind, default in (("inference", 7070), ("management", 7071)):
        host = props.get(f"grpc_{kind}_address", "127.0.0.1")
        targets.append((host, int(props.get(f"grpc_{kind}_port", default))))
    return targets
