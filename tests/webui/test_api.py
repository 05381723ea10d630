"""POST /api/predict and GET /api/health against the real TorchServe of tests/conftest.py."""

import base64
import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

from recognition.catalog import MODELS
from recognition.limits import MAX_DIGITS
from tests.helpers import (
    digit_row,
    inside,
    mnist_samples,
    mnist_test_set,
    png_bytes,
    read_right_by_both,
)
from tests.webui.conftest import drawn_zero, make_app
from webui import ensemble
from webui.merge import pool

pytestmark = pytest.mark.integration

ROLES = {model.arch: model.name for model in MODELS}
FIELDS = {
    "mlp_prediction",
    "mlp_confidence",
    "cnn_prediction",
    "cnn_confidence",
    "probabilities",
    "ensemble_prediction",
    "ensemble_confidence",
    "agree",
    "abstain",
    "reason",
    "mlp_abstain",
    "mlp_reason",
    "cnn_abstain",
    "cnn_reason",
    "latency_ms",
    "image",
    "errors",
    "number",
    "digits",
}


@pytest.fixture
def client(live_app):
    return live_app.test_client()


@pytest.fixture(scope="module")
def samples():
    return mnist_samples(4)


def direct(torchserve, model: str, data: bytes) -> dict:
    response = torchserve.predict(model, data, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_merged_answer_holds_both_models_answers(client, torchserve, samples):
    for data, _label in samples:
        response = client.post(
            "/api/predict", data={"file": (io.BytesIO(data), "digit.png", "image/png")}
        )
        assert response.status_code == 200, response.json
        body = response.json
        assert set(body) == FIELDS
        assert body["errors"] == {}
        for role, model in ROLES.items():
            expected = direct(torchserve, model, data)
            assert body[f"{role}_prediction"] == expected["prediction"]
            assert body[f"{role}_confidence"] == pytest.approx(expected["confidence"])
            assert body["probabilities"][role] == pytest.approx(expected["probabilities"])
        rule = ensemble.load()  # the fitted pool the app serves (config/ensemble.json)
        pooled = pool(
            [body["probabilities"][role] for role in ROLES], [rule.weights[r] for r in ROLES]
        )
        if not body["abstain"]:
            assert body["ensemble_prediction"] == int(np.argmax(pooled))
        assert body["ensemble_confidence"] == pytest.approx(max(pooled), abs=1e-2)
        assert body["agree"] == (body["mlp_prediction"] == body["cnn_prediction"])
        assert set(body["latency_ms"]) == {"mlp", "cnn", "total"}
        (only,) = body["digits"]  # one digit: the top level is that digit
        assert only["ensemble"]["prediction"] == body["ensemble_prediction"]
        assert only["cnn"]["probabilities"] == body["probabilities"]["cnn"]
        assert body["number"] == (None if body["abstain"] else str(body["ensemble_prediction"]))
        assert body["latency_ms"]["total"] >= max(
            body["latency_ms"]["mlp"], body["latency_ms"]["cnn"]
        )


def test_trained_models_read_real_digits(client, torchserve, samples):
    trained = [role for role, model in ROLES.items() if model not in torchserve.untrained]
    if not trained:
        pytest.skip("no trained weights committed yet")
    # Only digits a model gets right when asked directly: this tests the UI, not the model.
    checked = 0
    for data, label in samples:
        body = client.post("/api/predict", data=data, content_type="image/png").json
        for role in trained:
            if direct(torchserve, ROLES[role], data)["prediction"] == label:
                assert body[f"{role}_prediction"] == label
                checked += 1
    assert checked, "no sample was read correctly by any model"


def test_the_model_input_comes_back_as_a_28x28_png(client, samples):
    body = client.post("/api/predict", data=samples[0][0], content_type="image/png").json
    image = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert image.format == "PNG"
    assert image.size == (28, 28)


def test_multipart_json_and_raw_body_give_the_same_answer(client):
    data = drawn_zero()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    answers = [
        client.post("/api/predict", data={"file": (io.BytesIO(data), "canvas.png")}),
        client.post("/api/predict", json={"image": url}),
        client.post("/api/predict", data=data, content_type="image/png"),
        client.post("/api/predict", data=data, content_type="application/octet-stream"),
    ]
    assert [a.status_code for a in answers] == [200] * 4
    first = answers[0].json
    for answer in answers[1:]:
        assert answer.json["probabilities"] == first["probabilities"]


def blank_png() -> bytes:
    return png_bytes(np.full((64, 64), 255, np.uint8))


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"these are not the bytes of an image", 400),
        (drawn_zero()[:200], 400),  # truncated PNG
        (blank_png(), 422),  # decodes, but there is no digit
    ],
)
def test_a_rejected_image_comes_back_with_the_handlers_status_and_message(
    client, torchserve, data, status
):
    response = client.post("/api/predict", data=data, content_type="image/png")
    assert response.status_code == status
    expected = torchserve.predict("mnist_cnn", data, headers={"Content-Type": "image/png"})
    assert expected.status_code == status
    assert response.json == {"error": expected.json()["error"]}


def test_a_missing_model_leaves_the_other_answering(torchserve):
    app = make_app(
        INFERENCE_URL=torchserve.inference_url,
        MANAGEMENT_URL=torchserve.management_url,
        KEY_FILE=str(torchserve.key_file),
        CNN_MODEL="mnist_absent",
    )
    try:
        client = app.test_client()
        response = client.post("/api/predict", data=drawn_zero(), content_type="image/png")
        assert response.status_code == 200
        assert isinstance(response.json["mlp_prediction"], int)
        assert response.json["cnn_prediction"] is None
        assert response.json["probabilities"]["cnn"] is None
        assert response.json["errors"] == {"cnn": "the model is not registered in TorchServe"}
        health = client.get("/api/health")
        assert health.status_code == 200
        assert health.json["status"] == "degraded"
        assert health.json["models"]["cnn"]["status"] == "down"
    finally:
        app.extensions["torchserve"].close()


def test_health_reports_each_models_ready_workers(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    for role, model in ROLES.items():
        health = response.json["models"][role]
        assert health["model"] == model
        assert health["status"] == "ok"
        assert health["workers"]["ready"] >= 1


def rotate(torchserve, kind: str) -> None:
    """Have TorchServe issue a new key, as an operator (or another client) may at any time."""
    response = requests.get(
        f"{torchserve.management_url}/token",
        params={"type": kind},
        headers=torchserve.auth("api"),
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_rotated_keys_are_picked_up_without_a_restart(client, torchserve):
    assert (
        client.post("/api/predict", data=drawn_zero(), content_type="image/png").status_code == 200
    )
    assert client.get("/api/health").status_code == 200
    old = torchserve.keys()
    rotate(torchserve, "inference")
    rotate(torchserve, "management")
    new = torchserve.keys()
    assert new["inference"] != old["inference"] and new["management"] != old["management"]
    # the old key no longer works at TorchServe…
    stale = requests.post(
        f"{torchserve.inference_url}/predictions/mnist_mlp",
        data=drawn_zero(),
        headers={"Authorization": f"Bearer {old['inference']}"},
        timeout=5,
    )
    assert stale.status_code == 400
    # …yet the UI, which still holds it, answers without a restart
    response = client.post("/api/predict", data=drawn_zero(), content_type="image/png")
    assert response.status_code == 200, response.json
    assert response.json["errors"] == {}
    assert client.get("/api/health").json["status"] == "ok"
    assert torchserve.keys() == new  # it read the new keys, it did not issue others


def test_latency_of_a_request(client, samples):
    """Not a benchmark: a request for a 28×28 PNG must not take anywhere near the timeout."""
    client.post("/api/predict", data=samples[0][0], content_type="image/png")  # warm the pool
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        response = client.post("/api/predict", data=samples[0][0], content_type="image/png")
        timings.append(1000 * (time.perf_counter() - start))
        assert response.status_code == 200
    assert float(np.median(timings)) < 1000


@pytest.fixture(scope="module")
def row_digits(torchserve) -> list[tuple[np.ndarray, int]]:
    """Four test digits of different classes both models read right alone."""
    chosen = read_right_by_both(torchserve, 4)
    assert len(chosen) == 4, "too few MNIST test digits read correctly by both models"
    return chosen


def test_a_row_of_digits_is_read_as_a_number_with_a_box_per_digit(client, row_digits):
    data, cells = digit_row([pixels for pixels, _ in row_digits])
    width, height = Image.open(io.BytesIO(data)).size
    response = client.post("/api/predict", data=data, content_type="image/png")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["number"] == "".join(str(label) for _, label in row_digits)
    assert len(body["digits"]) == len(row_digits)
    for digit, cell in zip(body["digits"], cells, strict=True):
        x, y, w, h = digit["box"]
        assert min(x, y) >= 0 and x + w <= width and y + h <= height
        assert inside(digit["box"], cell), (digit["box"], cell)
        for role in ROLES:
            assert digit[role]["prediction"] == digit["ensemble"]["prediction"]
        assert Image.open(io.BytesIO(base64.b64decode(digit["image"]))).size == (28, 28)
    assert body["agree"] is True and body["abstain"] is False
    weakest = min(body["digits"], key=lambda d: d["ensemble"]["confidence"])
    assert body["ensemble_confidence"] == weakest["ensemble"]["confidence"]
    assert body["cnn_prediction"] == weakest["cnn"]["prediction"]


def test_more_digits_than_the_limit_is_a_422_with_the_reason(client):
    images, _labels = mnist_test_set()
    data, _cells = digit_row(list(images[: MAX_DIGITS + 1]), scale=2)
    response = client.post("/api/predict", data=data, content_type="image/png")
    assert response.status_code == 422
    assert f"at most {MAX_DIGITS}" in response.json["error"]
