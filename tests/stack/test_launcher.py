"""stack/launcher.py for real: the web UI in front of a TorchServe that already runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from stack.gunicorn import clean_environ
from stack.launcher import Launcher
from stack.ports import free_ports
from stack.torchserve import TorchServe
from tests.helpers import LiveTorchServe, canvas_digit

pytestmark = pytest.mark.integration


def test_a_running_torchserve_is_used_and_left_running(
    torchserve: LiveTorchServe, tmp_path: Path
) -> None:
    """As `make run` next to a running server: only the UI is started, and only it stopped."""
    live = torchserve.server
    server = TorchServe(live.work_dir, live.model_store, overrides=live.config, environ={})
    server.environ = clean_environ()
    (port,) = free_ports(1)
    launcher = Launcher(
        server, f"127.0.0.1:{port}", ui_log=tmp_path / "gunicorn.log", door_dir=tmp_path / "nginx"
    )
    with launcher as launched:
        assert not launched.owns_server and launched.running()
        health = requests.get(f"{launched.ui.url}/api/health", timeout=10).json()
        assert health["status"] == "ok", health
        answer = requests.post(
            f"{launched.ui.url}/api/predict", files={"file": ("d.png", canvas_digit())}, timeout=30
        )
        assert answer.status_code == 200 and answer.json()["errors"] == {}, answer.text
        # The public URL is nginx's, in front of gunicorn on another loopback port.
        assert launched.url == f"http://127.0.0.1:{port}" != launched.ui.url
        through = requests.get(f"{launched.url}/api/health", timeout=10)
        assert through.status_code == 200 and through.json()["status"] == "ok"
        ui, door = launched.ui, launched.door
    assert not ui.is_running() and door is not None and not door.is_running()
    assert live.is_running()
