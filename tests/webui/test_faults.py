"""Faults a real TorchServe cannot show on demand, played by a stub HTTP server.

A model that hangs, a worker answering 503, a malformed answer, keys that expire: the UI must
answer quickly with what it has, and renew keys without a restart.
"""

import json
import threading
import time
from pathlib import Path

import pytest

from tests.webui.conftest import make_app

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def handler_answer(prediction: int, confidence: float = 96.0) -> dict:
    rest = (100.0 - confidence) / 9
    probabilities = [confidence if d == prediction else rest for d in range(10)]
    return {
        "prediction": prediction,
        "confidence": confidence,
        "probabilities": probabilities,
        "image": "iVBORw0KGgo=",
    }


def serves(prediction: int):
    return lambda headers: (200, handler_answer(prediction))


@pytest.fixture
def app_for(stub_torchserve, tmp_path):
    apps = []

    def build(**settings):
        defaults = {
            "INFERENCE_URL": stub_torchserve.url,
            "MANAGEMENT_URL": stub_torchserve.url,
            "KEY_FILE": str(tmp_path / "key_file.json"),
            "READ_TIMEOUT": 0.5,
        }
        app = make_app(**{**defaults, **settings})
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["torchserve"].close()


def post(app, data: bytes = PNG):
    start = time.perf_counter()
    response = app.test_client().post("/api/predict", data=data, content_type="image/png")
    return response, time.perf_counter() - start


def test_both_models_are_called_concurrently(stub_torchserve, app_for):
    stub_torchserve.routes["/predictions/mnist_mlp"] = serves(4)
    stub_torchserve.routes["/predictions/mnist_cnn"] = serves(4)
    stub_torchserve.delays.update({"/predictions/mnist_mlp": 0.4, "/predictions/mnist_cnn": 0.4})
    response, elapsed = post(app_for(READ_TIMEOUT=2.0))
    assert response.status_code == 200
    assert response.json["agree"] is True
    assert elapsed < 0.7, f"{elapsed:.2f} s: the two 0.4 s calls were not concurrent"
    assert response.json["latency_ms"]["mlp"] >= 400 and response.json["latency_ms"]["cnn"] >= 400


def test_request_carries_the_image_the_key_and_asks_for_the_model_input(
    stub_torchserve, app_for, tmp_path
):
    (tmp_path / "key_file.json").write_text(json.dumps({"inference": {"key": "k-inf"}}))
    stub_torchserve.routes["/predictions/mnist_mlp"] = serves(1)
    stub_torchserve.routes["/predictions/mnist_cnn"] = serves(1)
    response, _ = post(app_for())
    assert response.status_code == 200
    assert response.json["image"] == "iVBORw0KGgo="
    for method, _path, headers in stub_torchserve.seen:
        assert method == "POST"
        assert headers["Authorization"] == "Bearer k-inf"
        assert headers["X-Return-Image"] == "1"
        assert headers["Content-Length"] == str(len(PNG))


def test_a_hanging_model_is_left_out_after_the_timeout(stub_torchserve, app_for):
    stub_torchserve.routes["/predictions/mnist_mlp"] = serves(2)
    stub_torchserve.routes["/predictions/mnist_cnn"] = serves(2)
    stub_torchserve.delays["/predictions/mnist_cnn"] = 3.0
    response, elapsed = post(app_for(READ_TIMEOUT=0.5))
    assert response.status_code == 200
    assert response.json["mlp_prediction"] == 2
    assert response.json["cnn_prediction"] is None
    assert response.json["errors"] == {"cnn": "the model did not answer within 0.5 s"}
    assert elapsed < 1.5


def test_both_models_hanging_gives_503_after_the_timeout(stub_torchserve, app_for):
    stub_torchserve.delays.update({"/predictions/mnist_mlp": 3.0, "/predictions/mnist_cnn": 3.0})
    response, elapsed = post(app_for(READ_TIMEOUT=0.5))
    assert response.status_code == 503
    assert set(response.json["errors"]) == {"mlp", "cnn"}
    assert elapsed < 1.5


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, {"code": 503, "message": "No worker is available"}, "no worker available"),
        (500, {"code": 500, "message": "Prediction failed at /opt/x.py"}, "answered 500"),
        (200, {"prediction": "seven"}, "invalid answer"),
        (200, ["not", "a", "dict"], "invalid answer"),
    ],
)
def test_a_failing_model_gives_the_other_and_a_clean_error(
    stub_torchserve, app_for, status, body, error
):
    stub_torchserve.routes["/predictions/mnist_mlp"] = lambda headers: (status, body)
    stub_torchserve.routes["/predictions/mnist_cnn"] = serves(8)
    response, _ = post(app_for())
    assert response.status_code == 200
    assert response.json["cnn_prediction"] == 8
    assert error in response.json["errors"]["mlp"]
    assert "/opt" not in response.get_data(as_text=True)


def write_keys(path: Path, inference: str) -> None:
    path.write_text(
        json.dumps(
            {
                "management": {"key": "m0", "expiration time": "2030-01-01T00:00:00Z"},
                "inference": {"key": inference, "expiration time": "2030-01-01T00:00:00Z"},
                "API": {"key": "api-key"},
            }
        )
    )


class ExpiringKeys:
    """TorchServe's token authorization: one valid inference key, a new one from /token."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self.valid = "i1"
        self.issued = 0
        self.lock = threading.Lock()
        write_keys(key_file, "i0")  # already expired: TorchServe no longer accepts it

    def predict(self, headers):
        if headers.get("Authorization") != f"Bearer {self.valid}":
            return 400, {
                "code": 400,
                "type": "InvalidKeyException",
                "message": "Token Authentication failed. Token either incorrect, expired, or not "
                "provided correctly",
            }
        return 200, handler_answer(5)

    def token(self, headers):
        if headers.get("Authorization") != "Bearer api-key":
            return 400, {"code": 400, "type": "InvalidKeyException", "message": "bad API key"}
        with self.lock:
            self.issued += 1
            write_keys(self.key_file, self.valid)
        return 200, {}


def test_an_expired_key_is_renewed_once_and_the_request_succeeds(
    stub_torchserve, app_for, tmp_path
):
    keys = ExpiringKeys(tmp_path / "key_file.json")
    stub_torchserve.routes["/predictions/mnist_mlp"] = keys.predict
    stub_torchserve.routes["/predictions/mnist_cnn"] = keys.predict
    stub_torchserve.routes["/token"] = keys.token
    app = app_for()
    response, _ = post(app)
    assert response.status_code == 200, response.json
    assert response.json["mlp_prediction"] == 5 and response.json["cnn_prediction"] == 5
    assert keys.issued == 1  # both models were refused at once; one new key served both
    token_calls = [(m, p) for m, p, _ in stub_torchserve.seen if p.startswith("/token")]
    assert token_calls == [("GET", "/token?type=inference")]
    # later requests use the new key straight away
    stub_torchserve.seen.clear()
    assert post(app)[0].status_code == 200
    assert len(stub_torchserve.seen) == 2


def test_a_key_rotated_by_someone_else_is_read_from_the_file(stub_torchserve, app_for, tmp_path):
    keys = ExpiringKeys(tmp_path / "key_file.json")
    keys.valid = "i0"
    stub_torchserve.routes["/predictions/mnist_mlp"] = keys.predict
    stub_torchserve.routes["/predictions/mnist_cnn"] = keys.predict
    stub_torchserve.routes["/token"] = keys.token
    app = app_for()
    assert post(app)[0].status_code == 200
    keys.valid = "i7"
    write_keys(keys.key_file, "i7")  # e.g. an operator ran /token?type=inference
    response, _ = post(app)
    assert response.status_code == 200
    assert keys.issued == 0


def test_a_key_that_cannot_be_renewed_gives_503_not_a_client_error(
    stub_torchserve, app_for, tmp_path
):
    keys = ExpiringKeys(tmp_path / "key_file.json")
    stub_torchserve.routes["/predictions/mnist_mlp"] = keys.predict
    stub_torchserve.routes["/predictions/mnist_cnn"] = keys.predict
    # no /token route: the stub answers 404 as TorchServe does without the token API
    response, _ = post(app_for())
    assert response.status_code == 503
    assert response.json["errors"]["mlp"] == "TorchServe rejected the inference key"


def describe(*statuses: str):
    workers = [{"id": str(9000 + i), "status": s} for i, s in enumerate(statuses)]
    return lambda headers: (200, [{"modelName": "m", "workers": workers}])


def test_health_counts_ready_workers_per_model(stub_torchserve, app_for):
    stub_torchserve.routes["/models/mnist_mlp"] = describe("READY", "READY")
    stub_torchserve.routes["/models/mnist_cnn"] = describe("UNLOADING")
    response = app_for().test_client().get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["ui"] == "ok"
    mlp, cnn = response.json["models"]["mlp"], response.json["models"]["cnn"]
    assert mlp == {"model": "mnist_mlp", "status": "ok", "workers": {"ready": 2, "total": 2}}
    assert cnn["status"] == "down" and cnn["error"] == "no worker is READY"


def test_health_is_503_when_no_model_has_a_worker(stub_torchserve, app_for):
    stub_torchserve.routes["/models/mnist_mlp"] = describe()
    response = app_for().test_client().get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "down"
    assert response.json["models"]["mlp"]["error"] == "no worker is running"
    assert response.json["models"]["cnn"]["error"] == "the model is not registered in TorchServe"
