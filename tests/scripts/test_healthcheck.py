"""scripts/healthcheck.py: the container probe that counts READY workers."""

from __future__ import annotations

import json
import sys

import pytest
import requests

from scripts import healthcheck
from scripts.torchserve_ctl import MODELS


def describe_answer(*statuses: str) -> list[dict]:
    """A management describe answer whose model has workers in the given states."""
    return [
        {
            "modelName": "mnist_cnn",
            "workers": [{"id": str(i), "status": s} for i, s in enumerate(statuses)],
        }
    ]


def response(status: int, body: object) -> requests.Response:
    """A requests.Response carrying a JSON body."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    return resp


@pytest.mark.unit
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (describe_answer("READY"), 1),
        (describe_answer("READY", "READY"), 2),
        (describe_answer("UNLOADING", "READY"), 1),
        (describe_answer("UNLOADING"), 0),
        (describe_answer("STARTING", "STOPPED"), 0),
        (describe_answer(), 0),
        ([], 0),
        ({"workers": []}, 0),
        (["not a dict"], 0),
        ([{"workers": None}], 0),
    ],
)
def test_ready_workers_counts_only_ready(answer: object, expected: int) -> None:
    """Only workers in state READY count; any other shape counts as none."""
    assert healthcheck.ready_workers(answer) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed"},
            True,
        ),
        (401, {"type": "InvalidKeyException"}, True),
        (400, {"code": 400, "type": "BadRequestException"}, False),
        (404, {"type": "ModelNotFoundException"}, False),
        (200, {"type": "InvalidKeyException"}, False),
        (400, ["not", "a", "dict"], False),
    ],
)
def test_token_rejection_is_told_apart(status: int, body: object, expected: bool) -> None:
    """Only TorchServe's key rejection triggers a key renewal."""
    assert healthcheck.is_token_rejection(response(status, body)) is expected


@pytest.mark.unit
def test_default_models_are_the_served_ones() -> None:
    """Without --models the probe checks every model TorchServe is started with."""
    assert healthcheck.parse_args([]).models == list(MODELS)


@pytest.mark.unit
def test_unreachable_server_is_unhealthy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening on the management port: exit status 1, not an exception."""
    from scripts.torchserve_ctl import free_ports

    (port,) = free_ports(1)
    monkeypatch.setenv("TS_MANAGEMENT_ADDRESS", f"http://127.0.0.1:{port}")
    assert healthcheck.main(["--work-dir", str(tmp_path), "--timeout", "1"]) == 1


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
def test_management_key_renewal_with_the_api_key(torchserve) -> None:
    """The probe can have TorchServe issue a new management key, and the new key works."""
    server = torchserve.server
    before = server.keys()["management"]
    assert healthcheck.renew_management_key(server, timeout=5.0)
    after = server.keys()["management"]
    assert after != before
    assert all(healthcheck.model_ready(server, model, 5.0) for model in MODELS)


@pytest.mark.integration
def test_probe_runs_as_a_module(torchserve) -> None:
    """`python -m scripts.healthcheck`, as the image and the pods run it, exits 0 when healthy."""
    import os
    import subprocess

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
