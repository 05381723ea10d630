"""KServe: the staged storage, the runtime and InferenceServices agreeing, the request formats."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from recognition.catalog import archives
from scripts.kserve_storage import MOUNT, kserve_config, kserve_overrides, stage
from stack.properties import read_properties, resolve_config
from stack.torchserve import TorchServe, TorchServeError, find_java
from tests.deploy.manifests import KSERVE, by_kind, load_documents, properties_port
from tests.helpers import REPO_ROOT, loopback_overrides, png_bytes

CONFIG = REPO_ROOT / "config" / "config.properties"
MODELS = archives()
RESOURCES = [
    doc
    for name in ("servingruntime.yaml", "inferenceservice.yaml", "inferenceservice-v2.yaml")
    for doc in load_documents(KSERVE / name)
]


def untrained_weights(target: Path) -> Path:
    """Untrained checkpoints of both models: the plumbing is under test here, not accuracy."""
    from recognition.models import build_model, save_checkpoint

    target.mkdir(parents=True, exist_ok=True)
    for arch in ("mlp", "cnn"):
        save_checkpoint(
            target / f"mnist_{arch}.pt", build_model(arch), arch, {}, {"note": "untrained"}
        )
    return target


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The storage layout `python -m scripts.kserve_storage` writes, from untrained weights."""
    base = tmp_path_factory.mktemp("kserve")
    stage(base / "storage", weights_dir=untrained_weights(base / "weights"))
    return base / "storage"


@pytest.mark.unit
def test_storage_has_the_layout_kserve_expects(storage: Path) -> None:
    """config/config.properties and model-store/<name>.mar for both models, nothing else needed."""
    assert (storage / "config" / "config.properties").is_file()
    assert sorted(p.name for p in (storage / "model-store").glob("*.mar")) == sorted(
        MODELS.values()
    )


@pytest.mark.unit
def test_kserve_config_changes_only_what_kserve_needs(storage: Path) -> None:
    """Every other setting is config/config.properties' own (as the launcher renders it, with
    the derived max_request_size): one configuration, not two."""
    base = resolve_config(read_properties(CONFIG.read_text(encoding="utf-8")))
    staged = read_properties((storage / "config" / "config.properties").read_text(encoding="utf-8"))
    overrides = kserve_overrides()
    assert {k: v for k, v in staged.items() if k not in overrides} == {
        k: v for k, v in base.items() if k not in overrides
    }
    assert {k: staged[k] for k in overrides} == overrides
    assert staged["model_store"] == f"{MOUNT}/model-store"
    assert staged["load_models"] == ",".join(f"{name}={mar}" for name, mar in MODELS.items())
    assert staged["disable_token_authorization"] == "true"
    assert staged["enable_envvars_config"] == "true"


@pytest.mark.unit
def test_runtime_ports_and_paths_match_the_staged_config(storage: Path) -> None:
    """The runtime serves on the inference port, scrapes the metrics port, reads the layout."""
    staged = read_properties(kserve_config(read_properties(CONFIG.read_text())).split("\n", 2)[2])
    runtime = by_kind(RESOURCES, "ServingRuntime")["mnist-serve-torchserve"]
    (container,) = runtime["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == properties_port(staged, "inference_address")
    assert staged["inference_address"].startswith("http://0.0.0.0:")
    assert runtime["spec"]["annotations"]["prometheus.kserve.io/port"] == str(
        properties_port(staged, "metrics_address")
    )
    assert f"--model-store={MOUNT}/model-store" in container["args"]
    assert f"--ts-config={MOUNT}/config/config.properties" in container["args"]
    assert "--foreground" in container["args"]
    assert container["command"][:2] == ["/usr/bin/tini", "-g"]  # SIGTERM reaches Java too
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TS_SERVICE_ENVELOPE"] == "{{.Labels.serviceEnvelope}}"
    assert container["readinessProbe"]["exec"]["command"] == ["python", "-m", "scripts.healthcheck"]


@pytest.mark.unit
def test_inference_services_use_the_runtime_they_name() -> None:
    """Each InferenceService names our runtime, a format and a protocol that runtime supports."""
    runtime = by_kind(RESOURCES, "ServingRuntime")["mnist-serve-torchserve"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    services = by_kind(RESOURCES, "InferenceService")
    assert {s["spec"]["predictor"]["model"]["protocolVersion"] for s in services.values()} == {
        "v1",
        "v2",
    }
    for service in services.values():
        model = service["spec"]["predictor"]["model"]
        assert model["runtime"] == runtime["metadata"]["name"]
        assert model["modelFormat"]["name"] in formats
        assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]


@pytest.mark.unit
def test_kustomization_lists_every_kserve_manifest() -> None:
    """deploy/kserve/kustomization.yaml applies all three manifests."""
    import yaml

    listed = yaml.safe_load((KSERVE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in KSERVE.glob("*.yaml") if p.name != "kustomization.yaml"
    )


# ---------------------------------------------------------------------------------------------
# The documented request formats, against TorchServe started as the runtime starts it
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["kserve", "kservev2"])
def kserve_torchserve(
    request: pytest.FixtureRequest, storage: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, TorchServe]]:
    """TorchServe on the staged config with the envelope KServe sets for v1 or v2."""
    try:
        find_java(os.environ)
    except TorchServeError as exc:
        pytest.skip(str(exc))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TS_")}
    environ["TS_SERVICE_ENVELOPE"] = request.param
    server = TorchServe(
        tmp_path_factory.mktemp("kserve-work"),
        storage / "model-store",
        overrides={**loopback_overrides(), "model_store": str(storage / "model-store")},
        config_file=storage / "config" / "config.properties",
        environ=environ,
    )
    try:
        server.start_ready(120)
        yield request.param, server
    finally:
        server.stop()


def digit_png() -> bytes:
    """A drawn 7 as PNG bytes (no dataset needed: the plumbing is under test, not accuracy)."""
    import numpy as np

    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:9, 6:22] = 255
    for row in range(9, 24):
        col = 21 - (row - 9) // 2
        pixels[row, col - 1 : col + 2] = 255
    return png_bytes(pixels)


def request_body(envelope: str, data: str) -> dict[str, Any]:
    """The request body docs/deployment.md documents for each protocol."""
    if envelope == "kserve":
        return {"instances": [{"data": data}]}
    return {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [data]}]}


def answer_of(envelope: str, body: dict[str, Any]) -> str:
    """The handler's answer (a JSON string) inside a v1 or v2 response."""
    if envelope == "kserve":
        return body["predictions"][0]
    (output,) = body["outputs"]
    assert output["datatype"] == "BYTES"
    return output["data"][0]


def url_for(envelope: str, server: TorchServe, model: str) -> str:
    """The KServe path of one model, on TorchServe's inference port."""
    if envelope == "kserve":
        return f"{server.inference_url}/v1/models/{model}:predict"
    return f"{server.inference_url}/v2/models/{model}/infer"


@pytest.mark.integration
@pytest.mark.parametrize("model", list(MODELS))
def test_documented_request_gets_a_prediction(
    kserve_torchserve: tuple[str, TorchServe], model: str
) -> None:
    """A base64 PNG in the documented body: 200 with the handler's answer, no key needed."""
    import json

    envelope, server = kserve_torchserve
    data = base64.b64encode(digit_png()).decode()
    response = requests.post(
        url_for(envelope, server, model), json=request_body(envelope, data), timeout=30
    )
    assert response.status_code == 200, response.text
    answer = json.loads(answer_of(envelope, response.json()))
    single = {"prediction", "confidence", "probabilities", "abstain", "reason"}
    assert set(answer) == single | {"digits", "number"}
    assert answer["prediction"] in range(10) and len(answer["probabilities"]) == 10
    assert len(answer["digits"]) == 1 and answer["number"] == str(answer["prediction"])


@pytest.mark.integration
def test_bad_image_is_a_4xx_with_the_handler_error(
    kserve_torchserve: tuple[str, TorchServe],
) -> None:
    """Bytes that are no image: the handler's 400 comes through KServe's envelope, not a 5xx."""
    import json

    envelope, server = kserve_torchserve
    data = base64.b64encode(b"not an image").decode()
    response = requests.post(
        url_for(envelope, server, "mnist_cnn"), json=request_body(envelope, data), timeout=30
    )
    assert response.status_code == 400
    assert json.loads(answer_of(envelope, response.json()))["status"] == 400
