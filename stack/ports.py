"""Free and busy TCP ports on this machine, and TorchServe settings on free loopback ports."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from contextlib import ExitStack

from stack.properties import env_name


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports free on `host` right now (all held open while choosing)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def busy_ports(targets: Iterable[tuple[str, int]]) -> list[str]:
    """The host:port pairs among `targets` that something already listens on."""
    busy = []
    for host, port in targets:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(f"{host}:{port}")
    return busy


def loopback_overrides(ports: Sequence[int] | None = None) -> dict[str, str]:
    """Settings putting all five TorchServe listeners on 127.0.0.1: on `ports` (inference,
    management, metrics, gRPC inference, gRPC management), by default five free ones."""
    inference, management, metrics, grpc_inference, grpc_management = ports or free_ports(5)
    return {
        "inference_address": f"http://127.0.0.1:{inference}",
        "management_address": f"http://127.0.0.1:{management}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_address": "127.0.0.1",
        "grpc_management_port": str(grpc_management),
    }


def loopback_environ(ports: Sequence[int] | None = None) -> dict[str, str]:
    """`loopback_overrides` as the TS_<KEY> environment variables that set them."""
    return {env_name(key): value for key, value in loopback_overrides(ports).items()}
