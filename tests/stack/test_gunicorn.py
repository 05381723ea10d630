"""stack/gunicorn.py and stack/launcher.py without servers: environments and addresses."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from stack.gunicorn import Gunicorn, clean_environ, webui_environ
from stack.launcher import Launcher, configured_bind, gunicorn_settings
from stack.torchserve import TorchServe

pytestmark = pytest.mark.unit


def test_webui_environ_points_the_ui_at_one_torchserve(tmp_path: Path) -> None:
    env = webui_environ("http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path / "k.json")
    assert env == {
        "WEBUI_INFERENCE_URL": "http://127.0.0.1:1",
        "WEBUI_MANAGEMENT_URL": "http://127.0.0.1:2",
        "WEBUI_KEY_FILE": str(tmp_path / "k.json"),
    }
    assert webui_environ("a", "b", None)["WEBUI_KEY_FILE"] == ""


def test_clean_environ_drops_the_callers_stack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_INFERENCE_ADDRESS", "x")
    monkeypatch.setenv("WEBUI_READ_TIMEOUT", "1")
    monkeypatch.setenv("GUNICORN_WORKERS", "9")
    env = clean_environ({"WEBUI_POOL_SIZE": "2"})
    assert not {"TS_INFERENCE_ADDRESS", "WEBUI_READ_TIMEOUT", "GUNICORN_WORKERS"} & set(env)
    assert env["WEBUI_POOL_SIZE"] == "2"


def test_configured_bind_is_gunicorn_confs() -> None:
    assert configured_bind({"GUNICORN_BIND": "127.0.0.1:9"}) == "127.0.0.1:9"
    assert configured_bind({}) == "127.0.0.1:5000"


def test_gunicorn_url_and_bind() -> None:
    ui = Gunicorn("0.0.0.0:5123", {})
    assert ui.url == "http://127.0.0.1:5123"
    assert ui.env["GUNICORN_BIND"] == "0.0.0.0:5123"
    assert not ui.is_running()
    ui.stop()  # nothing started: nothing to do


def test_the_launcher_points_the_ui_at_its_server_unless_told_otherwise(tmp_path: Path) -> None:
    overrides = {"inference_address": "http://127.0.0.1:9080"}
    server = TorchServe(tmp_path / "work", tmp_path, overrides=overrides, environ={})
    launched = Launcher(server, "127.0.0.1:5999")
    assert launched.ui.env["WEBUI_INFERENCE_URL"] == "http://127.0.0.1:9080"
    assert launched.ui.env["WEBUI_KEY_FILE"] == str(tmp_path / "work" / "key_file.json")
    told = Launcher(server, "127.0.0.1:5999", ui_env={"WEBUI_INFERENCE_URL": "http://h:1"})
    assert told.ui.env["WEBUI_INFERENCE_URL"] == "http://h:1"


def test_gunicorns_master_makes_one_lane_directory_for_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """config/gunicorn.conf.py's on_starting sets WEBUI_LANE_DIR before the workers fork (they
    inherit it: webui/shedding.py's lanes are shared); on_exit removes what it made."""
    monkeypatch.delenv("WEBUI_LANE_DIR", raising=False)
    hooks = gunicorn_settings({})
    server = SimpleNamespace()
    hooks["on_starting"](server)
    made = Path(os.environ["WEBUI_LANE_DIR"])
    assert made.is_dir()
    hooks["on_exit"](server)
    assert not made.exists()
    monkeypatch.setenv("WEBUI_LANE_DIR", "/given")
    hooks["on_starting"](SimpleNamespace())
    assert os.environ["WEBUI_LANE_DIR"] == "/given"
