"""scripts/healthcheck.py: the container probe that counts READY workers (over tsclient)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recognition.catalog import MODEL_NAMES
from scripts import healthcheck
from stack.ports import free_ports


@pytest.mark.unit
def test_default_models_are_the_served_ones() -> None:
    """Without --models the probe checks every model TorchServe is started with."""
    assert healthcheck.parse_args([]).models == list(MODEL_NAMES)


@pytest.mark.unit
def test_unreachable_server_is_unhealthy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening on the management port: exit status 1, not an exception."""
    (port,) = free_ports(1)
    monkeypatch.setenv("TS_MANAGEMENT_ADDRESS", f"http://127.0.0.1:{port}")
    assert healthcheck.main(["--work-dir", str(tmp_path), "--timeout", "1"]) == 1


@pytest.mark.unit
def test_the_probe_reads_the_work_dirs_key_file(tmp_path, monkeypatch) -> None:
    """Addresses from the configuration (TS_* applied), keys from <work dir>/key_file.json."""
    monkeypatch.setenv("TS_MANAGEMENT_ADDRESS", "http://127.0.0.1:9181")
    with healthcheck.client_for(tmp_path, 2.0) as client:
        assert client.management_url == "http://127.0.0.1:9181"
        assert client.keys.path == tmp_path / "key_file.json"


@pytest.mark.integration
def test_live_server_is_healthy_and_unknown_model_is_not(
    torchserve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a real TorchServe: 0 with both models READY, 1 for a model it does not serve."""
    server = torchserve.server
    monkeypatch.setenv("TS_MANAGEMENT_ADDRESS", server.config["management_address"])
    work_dir = ["--work-dir", str(server.work_dir)]
    assert healthcheck.main(work_dir) == 0
    assert healthcheck.main([*work_dir, "--models", "mnist_cnn", "no_such_model"]) == 1


@pytest.mark.integration
def test_a_retired_management_key_is_renewed_by_the_probe(torchserve, monkeypatch) -> None:
    """The probe's own key refused (another process renewed it): it picks up the new one."""
    server = torchserve.server
    monkeypatch.setenv("TS_MANAGEMENT_ADDRESS", server.config["management_address"])
    with healthcheck.client_for(server.work_dir, 5.0) as client:
        before = client.keys.get("management")
        after = server.renew_key("management")  # the probe's cached key is now refused
        assert after != before
        assert all(healthcheck.model_ready(client, model, 5.0) for model in MODEL_NAMES)
        assert client.keys.get("management") == after


@pytest.mark.integration
def test_probe_runs_as_a_module(torchserve) -> None:
    """`python -m scripts.healthcheck`, as the image and the pods run it, exits 0 when healthy."""
    server = torchserve.server
    env = {**os.environ, "TS_MANAGEMENT_ADDRESS": server.config["management_address"]}
    result = subprocess.run(
        [sys.executable, "-m", "scripts.healthcheck", "--work-dir", str(server.work_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
