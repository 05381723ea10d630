"""scripts/torchserve_ctl.py and the committed TorchServe configuration."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from scripts import torchserve_ctl as ctl
from scripts.torchserve_ctl import free_ports
from tests.helpers import REPO_ROOT, LiveTorchServe, canvas_digit

CONFIG = ctl.read_properties(ctl.CONFIG_FILE.read_text())


# ---------------------------------------------------------------------------------------------
# The committed configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_config_binds_everything_to_loopback_with_the_agreed_ports() -> None:
    targets = ctl.bind_targets(CONFIG)
    assert targets == [
        ("127.0.0.1", 8080),
        ("127.0.0.1", 8081),
        ("127.0.0.1", 8082),
        ("127.0.0.1", 7070),
        ("127.0.0.1", 7071),
    ]


@pytest.mark.unit
def test_config_security_defaults() -> None:
    assert CONFIG.get("disable_token_authorization", "false") == "false"
    assert CONFIG["enable_model_api"] == "false"
    assert CONFIG["metrics_mode"] == "prometheus"
    assert CONFIG["install_py_dep_per_model"] == "false"
    assert "enable_envvars_config" not in CONFIG  # overrides go through torchserve_ctl only


@pytest.mark.unit
def test_max_request_size_admits_what_the_web_ui_accepts() -> None:
    from webui.config import from_env

    assert int(CONFIG["max_request_size"]) >= from_env({})["MAX_CONTENT_LENGTH"]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn"])
def test_model_configs(name: str) -> None:
    config = yaml.safe_load((REPO_ROOT / "config" / "models" / f"{name}.yaml").read_text())
    assert 1 <= config["minWorkers"] <= config["maxWorkers"]
    assert config["batchSize"] > 1
    assert 0 < config["maxBatchDelay"] <= 5  # a lone request waits this long (ms)
    assert config["responseTimeout"] > 0
    assert "deviceType" not in config  # GPU when present, CPU otherwise


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_properties_round_trip() -> None:
    text = "# comment\n\na = 1\nb=x=y\n! also a comment\n"
    props = ctl.read_properties(text)
    assert props == {"a": "1", "b": "x=y"}
    assert ctl.read_properties(ctl.write_properties(props)) == props


@pytest.mark.unit
def test_environment_overrides_and_explicit_overrides() -> None:
    environ = {
        "TS_INFERENCE_ADDRESS": "http://0.0.0.0:9080",
        "TS_NUMBER_OF_GPU": "0",
        "TS_NOT_A_KEY": "x",
        "TS_METRICS_ADDRESS": "http://127.0.0.1:9082",
    }
    props = ctl.resolve_config(CONFIG, environ, {"metrics_address": "http://127.0.0.1:1"})
    assert props["inference_address"] == "http://0.0.0.0:9080"
    assert props["number_of_gpu"] == "0"
    assert "not_a_key" not in props
    assert props["metrics_address"] == "http://127.0.0.1:1"  # explicit beats environment
    assert props["management_address"] == CONFIG["management_address"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("https://example.org:8443", "https://example.org:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_url_of(address: str, url: str) -> None:
    assert ctl.url_of(address) == url


@pytest.mark.unit
def test_busy_ports_finds_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (free,) = free_ports(1)
        assert ctl.busy_ports([("127.0.0.1", port), ("127.0.0.1", free)]) == [f"127.0.0.1:{port}"]


@pytest.mark.unit
def test_parse_keys() -> None:
    text = json.dumps(
        {
            "management": {"key": "m", "expiration time": "2030-01-01T00:00:00Z"},
            "inference": {"key": "i", "expiration time": "2030-01-01T00:00:00Z"},
            "API": {"key": "a"},
        }
    )
    assert ctl.parse_keys(text) == {"inference": "i", "management": "m", "api": "a"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("description", "ready"),
    [
        ([{"workers": [{"status": "READY"}]}], True),
        ([{"workers": [{"status": "READY"}, {"status": "STARTING"}]}], False),
        ([{"workers": []}], False),
        ([], False),
        ({"code": 404}, False),
    ],
)
def test_workers_ready(description: object, ready: bool) -> None:
    assert ctl.workers_ready(description) is ready


@pytest.mark.unit
def test_missing_java_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ctl.TorchServeError, match="openjdk-17-jre-headless"):
        ctl.find_java({"PATH": str(tmp_path)})
    server = ctl.TorchServe(tmp_path / "work", tmp_path, environ={"PATH": str(tmp_path)})
    with pytest.raises(ctl.TorchServeError, match="Java 17"):
        server.start()
    assert not (tmp_path / "work").exists()


@pytest.mark.unit
def test_java_home_is_preferred(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    assert ctl.find_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""}) == str(java)


@pytest.mark.unit
def test_start_needs_the_archives(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    environ = {"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""}
    server = ctl.TorchServe(tmp_path / "work", tmp_path / "empty_store", environ=environ)
    with pytest.raises(ctl.TorchServeError, match="build_archives"):
        server.start()


@pytest.mark.unit
def test_stop_never_touches_a_process_that_is_not_its_server(tmp_path: Path) -> None:
    server = ctl.TorchServe(tmp_path / "work", tmp_path)
    server.tmp_dir.mkdir(parents=True)
    server.pid_file.write_text(str(os.getpid()))  # a stale pid file naming this test process
    assert server.pid() is None
    assert server.stop() is False
    assert not server.pid_file.exists()


# ---------------------------------------------------------------------------------------------
# The command line, next to the session's server
# ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_cli_start_status_stop_leaves_the_other_server_alone(
    torchserve: LiveTorchServe, tmp_path: Path
) -> None:
    """A second instance from the CLI, placed by TS_* variables; stopping it spares the first."""
    inference, management, metrics, grpc_i, grpc_m = free_ports(5)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TS_")},
        "TS_INFERENCE_ADDRESS": f"http://127.0.0.1:{inference}",
        "TS_MANAGEMENT_ADDRESS": f"http://127.0.0.1:{management}",
        "TS_METRICS_ADDRESS": f"http://127.0.0.1:{metrics}",
        "TS_GRPC_INFERENCE_PORT": str(grpc_i),
        "TS_GRPC_MANAGEMENT_PORT": str(grpc_m),
    }
    work = tmp_path / "work"
    store = torchserve.server.model_store
    args = ["--work-dir", str(work), "--model-store", str(store)]

    def cli(action: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.torchserve_ctl", action, *args, *extra],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = cli("start", "--no-build", "--timeout", "120")
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{inference}" in started.stdout
        assert "mnist_cnn: READY" in started.stdout
        second = ctl.TorchServe(work, store, environ=env)
        assert second.is_running()
        assert (work / "logs" / "ts_log.log").is_file()
        assert (work / "tmp" / ".model_server.pid").is_file()
        response = requests.post(
            f"http://127.0.0.1:{inference}/predictions/mnist_cnn",
            data=canvas_digit(),
            headers={**second.auth("inference"), "Content-Type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 200
        status = cli("status")
        assert status.returncode == 0
        assert "mnist_mlp: READY" in status.stdout
        # A renewed key replaces the old one at once, in the server and in key_file.json.
        old = second.keys()["inference"]
        new = second.renew_key("inference")
        assert new != old
        ping = f"http://127.0.0.1:{inference}/ping"
        assert (
            requests.get(ping, headers={"Authorization": f"Bearer {old}"}, timeout=10).status_code
            == 400
        )
        assert requests.get(ping, headers={"Authorization": f"Bearer {new}"}, timeout=10).ok
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not second.is_running()
    assert not (work / "key_file.json").exists()
    assert torchserve.server.is_running()
    assert torchserve.predict("mnist_cnn", canvas_digit(), {"Content-Type": "image/png"}).ok
    # Nothing written into the repository by TorchServe.
    assert not (REPO_ROOT / "logs" / "ts_log.log").exists()
    assert not (REPO_ROOT / "key_file.json").exists()
    assert cli("stop").stdout.strip() == "TorchServe is not running"


@pytest.mark.unit
def test_loopback_overrides_use_five_distinct_loopback_ports() -> None:
    config = ctl.loopback_overrides()
    ports = {config["grpc_inference_port"], config["grpc_management_port"]}
    ports |= {
        config[k].rsplit(":", 1)[1] for k in config if k.endswith("_address") and "grpc" not in k
    }
    assert len(ports) == 5
    assert all("127.0.0.1" in v for k, v in config.items() if k.endswith("address"))
