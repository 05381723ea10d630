"""POST /api/explain: against the real TorchServe, with TorchServe down, and the pure answer."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from tests.helpers import mnist_samples
from tests.webui.conftest import drawn_zero, make_app
from webui.explain import explanation, valid_map
from webui.merge import ModelReply

PNG = b"\x89PNG\r\n\x1a\n fake"


@pytest.fixture
def client(live_app):
    return live_app.test_client()


@pytest.mark.integration
@pytest.mark.parametrize("role", ["cnn", "mlp"])
def test_explain_answers_the_model_s_map_for_its_prediction(client, torchserve, role):
    data = drawn_zero()
    response = client.post(
        f"/api/explain?model={role}",
        data={"file": (io.BytesIO(data), "zero.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["model"] == role
    assert np.asarray(body["attributions"]).shape == (28, 28)
    assert body["method"] == "integrated_gradients"
    assert body["target"] == body["prediction"]
    direct = torchserve.predict(f"mnist_{role}", data, {"Content-Type": "image/png"}).json()
    assert body["prediction"] == direct["prediction"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.integration
@pytest.mark.data
def test_explain_takes_a_data_url_as_the_draw_page_sends_it(client):
    ((data, _),) = mnist_samples(1)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    response = client.post("/api/explain", json={"image": url})
    assert response.status_code == 200, response.json
    assert response.json["model"] == "cnn"  # the default


@pytest.mark.integration
@pytest.mark.parametrize(("data", "status"), [(PNG, 400), (b"GIF89a not really", 400)])
def test_a_bad_image_is_the_handler_s_4xx_json(client, data, status):
    response = client.post("/api/explain?model=cnn", data=data, content_type="image/png")
    assert response.status_code == status
    assert set(response.json) == {"error"} and response.json["error"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": b"", "content_type": "image/png"}, 400),
        ({"data": "<svg/>", "content_type": "text/html"}, 415),
        ({"data": PNG, "content_type": "image/png", "query_string": {"model": "rnn"}}, 400),
    ],
)
def test_input_errors_are_answered_before_calling_torchserve(offline_app, kwargs, status):
    response = offline_app.test_client().post("/api/explain", **kwargs)
    assert response.status_code == status
    assert set(response.json) == {"error"}


@pytest.mark.unit
def test_torchserve_down_is_a_clear_503(offline_app):
    response = offline_app.test_client().post(
        "/api/explain?model=mlp", data=PNG, content_type="image/png"
    )
    assert response.status_code == 503
    assert response.json == {"error": "TorchServe is unreachable", "model": "mlp"}


@pytest.mark.unit
def test_a_model_not_registered_is_a_503_that_says_so(stub_torchserve, tmp_path):
    app = make_app(
        INFERENCE_URL=stub_torchserve.url,
        MANAGEMENT_URL=stub_torchserve.url,
        KEY_FILE=str(tmp_path / "none.json"),
    )
    try:
        response = app.test_client().post("/api/explain", data=PNG, content_type="image/png")
    finally:
        app.extensions["torchserve"].close()
    assert response.status_code == 503
    assert "not registered" in response.json["error"]
    assert stub_torchserve.seen[0][1] == "/explanations/mnist_cnn"


ANSWER = {"prediction": 3, "confidence": 90.0, "probabilities": [10.0] * 10, "target": 3}


@pytest.mark.unit
def test_explanation_keeps_a_valid_map_and_refuses_a_broken_one():
    good = {**ANSWER, "attributions": [[0.0] * 28 for _ in range(28)]}
    status, body = explanation("cnn", ModelReply(200, 12.34, good))
    assert status == 200
    assert body["prediction"] == 3 and body["latency_ms"] == 12.3
    assert "probabilities" not in body
    status, body = explanation("cnn", ModelReply(200, 1.0, {**ANSWER, "attributions": [[1.0]]}))
    assert status == 502 and body["error"]
    assert explanation("cnn", ModelReply(422, 1.0, error="no digit"))[0] == 422


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([[0.5] * 28 for _ in range(28)], True),
        ([[0.5] * 28 for _ in range(27)], False),
        ([[float("nan")] * 28 for _ in range(28)], False),
        ([[True] * 28 for _ in range(28)], False),
        ("no", False),
    ],
)
def test_valid_map(value, ok):
    assert valid_map(value) is ok
