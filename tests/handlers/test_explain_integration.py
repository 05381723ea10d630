"""TorchServe's explanations API through a real server (the session's `torchserve` fixture)."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from recognition import attribution
from recognition.preprocessing import preprocess
from tests.helpers import MODEL_NAMES, LiveTorchServe, canvas_digit, mnist_samples

pytestmark = pytest.mark.integration

PNG_HEADERS = {"Content-Type": "image/png"}


def explain(server: LiveTorchServe, model: str, data: bytes, **kw: object) -> requests.Response:
    """POST one request to /explanations/<model> with the inference key."""
    return requests.post(
        f"{server.inference_url}/explanations/{model}",
        data=data,
        headers={**server.auth("inference"), **PNG_HEADERS},
        timeout=30,
        **kw,
    )


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_explanations_answer_a_28x28_map_for_the_prediction(
    torchserve: LiveTorchServe, model: str
) -> None:
    data = canvas_digit()
    response = explain(torchserve, model, data)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    maps = np.asarray(answer["attributions"], np.float64)
    assert maps.shape == (28, 28)
    assert np.isfinite(maps).all()
    assert answer["method"] == "integrated_gradients"
    assert answer["baseline"] == "background"
    predicted = torchserve.predict(model, data, PNG_HEADERS).json()
    assert "attributions" not in predicted  # the flag is the frontend's, per endpoint
    assert answer["prediction"] == answer["target"] == predicted["prediction"]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_explanations_take_a_multipart_file_too(torchserve: LiveTorchServe, model: str) -> None:
    response = requests.post(
        f"{torchserve.inference_url}/explanations/{model}",
        files={"file": ("digit.png", canvas_digit(), "image/png")},
        headers=torchserve.auth("inference"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["attributions"]) == 28


@pytest.mark.parametrize(
    ("data", "status"), [(b"", 400), (b"GIF89a not really", 400), (b"\x89PNG\r\n\x1a\n", 400)]
)
def test_a_bad_image_gets_a_4xx_json_error(
    torchserve: LiveTorchServe, data: bytes, status: int
) -> None:
    response = explain(torchserve, "mnist_cnn", data)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["error"]


def test_explanations_need_the_inference_key(torchserve: LiveTorchServe) -> None:
    response = requests.post(
        f"{torchserve.inference_url}/explanations/mnist_cnn",
        data=canvas_digit(),
        headers=PNG_HEADERS,
        timeout=30,
    )
    assert response.status_code in (400, 401, 403)  # TorchServe 0.12 answers 400
    assert "attributions" not in response.text


@pytest.mark.data
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_served_attribution_lies_on_the_ink(torchserve: LiveTorchServe, model: str) -> None:
    if model in torchserve.untrained:
        pytest.skip(f"weights/{model}.pt is not committed: an untrained placeholder is served")
    for data, _ in mnist_samples(5):
        response = explain(torchserve, model, data)
        assert response.status_code == 200, response.text
        maps = np.asarray(response.json()["attributions"])
        assert attribution.ink_share(maps, preprocess(data), dilate=0) >= 0.7
