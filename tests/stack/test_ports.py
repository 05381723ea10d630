"""stack/ports.py: free and busy ports, TorchServe on free loopback ports."""

from __future__ import annotations

import socket

import pytest

from stack.ports import busy_ports, free_ports, loopback_overrides

pytestmark = pytest.mark.unit


def test_busy_ports_finds_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (free,) = free_ports(1)
        assert busy_ports([("127.0.0.1", port), ("127.0.0.1", free)]) == [f"127.0.0.1:{port}"]


def test_loopback_overrides_use_five_distinct_loopback_ports() -> None:
    config = loopback_overrides()
    ports = {config["grpc_inference_port"], config["grpc_management_port"]}
    ports |= {
        config[k].rsplit(":", 1)[1] for k in config if k.endswith("_address") and "grpc" not in k
    }
    assert len(ports) == 5
    assert all("127.0.0.1" in v for k, v in config.items() if k.endswith("address"))
