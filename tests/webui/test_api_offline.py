"""The API with TorchServe stopped: fast 503 JSON answers, and input errors before any call."""

import time

import pytest

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n fake"


@pytest.fixture
def client(offline_app):
    return offline_app.test_client()


def test_predict_with_torchserve_down_is_a_fast_503(client):
    start = time.perf_counter()
    response = client.post("/api/predict", data=PNG, content_type="image/png")
    assert time.perf_counter() - start < 2.0
    assert response.status_code == 503
    assert response.json["errors"] == {
        "mlp": "TorchServe is unreachable",
        "cnn": "TorchServe is unreachable",
    }


def test_health_with_torchserve_down_says_what_is_down(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "down"
    assert response.json["ui"] == "ok"
    for role, name in (("mlp", "mnist_mlp"), ("cnn", "mnist_cnn")):
        model = response.json["models"][role]
        assert model == {"model": name, "status": "down", "error": "TorchServe is unreachable"}


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": b"", "content_type": "image/png"}, 400),
        ({"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400),
        ({"json": {"image": "%%%"}}, 400),
        ({"data": "<svg/>", "content_type": "text/html"}, 415),
    ],
)
def test_input_errors_are_answered_before_calling_torchserve(client, kwargs, status):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status
    assert set(response.json) == {"error"}
