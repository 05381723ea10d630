"""Both archives served by a real TorchServe (the session's `torchserve` fixture)."""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.helpers import (
    MODEL_NAMES,
    LiveTorchServe,
    canvas_digit,
    digit_row,
    inside,
    mnist_samples,
    png_bytes,
    read_right_by_both,
)

pytestmark = pytest.mark.integration

SAMPLES_PER_MODEL = 50
DEFAULT_ERROR_RATE = 0.05  # when a checkpoint does not record its test accuracy

PNG_HEADERS = {"Content-Type": "image/png"}


def allowed_errors(error_rate: float, n: int) -> int:
    """Mistakes tolerated on n images: the expected count plus three standard deviations + 1."""
    mean = error_rate * n
    return math.ceil(mean + 3 * math.sqrt(n * error_rate * (1 - error_rate)) + 1)


def expected_error_rate(server: LiveTorchServe, model: str) -> float:
    """1 - the accuracy the served checkpoint records (test, else validation), or a default."""
    from recognition.models import load_checkpoint

    _, meta = load_checkpoint(server.weights_dir / f"{model}.pt")
    accuracy = meta.get("test_accuracy") or meta.get("val_accuracy")
    return 1.0 - float(accuracy) if accuracy else DEFAULT_ERROR_RATE


def post_many(server: LiveTorchServe, model: str, bodies: list[bytes]) -> list[requests.Response]:
    """POST all bodies at once from as many threads (TorchServe gets them concurrently)."""
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(lambda b: server.predict(model, b, PNG_HEADERS), bodies))


@pytest.mark.data
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_models_recognise_real_mnist_digits(torchserve: LiveTorchServe, model: str) -> None:
    if model in torchserve.untrained:
        pytest.skip(f"weights/{model}.pt is not committed: an untrained placeholder is served")
    samples = mnist_samples(SAMPLES_PER_MODEL)
    wrong = []
    for data, label in samples:
        response = torchserve.predict(model, data, PNG_HEADERS)
        assert response.status_code == 200, response.text
        answer = response.json()
        single = {"prediction", "confidence", "probabilities", "abstain", "reason"}
        assert set(answer) == single | {"digits", "number"}
        assert answer["confidence"] == max(answer["probabilities"])
        assert len(answer["digits"]) == 1  # one digit is read as one, not split
        if answer["prediction"] != label:
            wrong.append((label, answer["prediction"]))
    limit = allowed_errors(expected_error_rate(torchserve, model), len(samples))
    assert len(wrong) <= limit, f"{model}: {len(wrong)} wrong of {len(samples)}: {wrong}"


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_way_of_sending_the_image_gets_the_same_answer(
    torchserve: LiveTorchServe, model: str
) -> None:
    data = canvas_digit()
    encoded = base64.b64encode(data).decode()
    url = f"{torchserve.inference_url}/predictions/{model}"
    auth = torchserve.auth()
    answers = [
        requests.post(url, data=data, headers={**auth, **PNG_HEADERS}, timeout=10),
        requests.post(url, data=data, headers=auth, timeout=10),  # no Content-Type
        requests.post(url, files={"file": ("d.png", data, "image/png")}, headers=auth, timeout=10),
        requests.post(url, json={"image": encoded}, headers=auth, timeout=10),
        requests.post(
            url, json={"data": f"data:image/png;base64,{encoded}"}, headers=auth, timeout=10
        ),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
    assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_data_binary_without_content_type(torchserve: LiveTorchServe, tmp_path: Path) -> None:
    """curl's default form content type: base64 text is recovered, binary gets a clear 415."""
    png = tmp_path / "digit.png"
    png.write_bytes(canvas_digit())
    text = tmp_path / "digit.b64"
    text.write_text(base64.b64encode(png.read_bytes()).decode())
    url = f"{torchserve.inference_url}/predictions/mnist_cnn"
    key = torchserve.keys()["inference"]

    def curl(path: Path) -> tuple[int, dict]:
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                "-H",
                f"Authorization: Bearer {key}",
                "--data-binary",
                f"@{path}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        body, status = out.rsplit("\n", 1)
        return int(status), json.loads(body)

    status, answer = curl(text)
    assert status == 200
    assert 0 <= answer["prediction"] <= 9
    status, answer = curl(png)
    assert 400 <= status < 500
    assert "Content-Type" in answer.get("error", answer.get("message", ""))


def test_return_image_header(torchserve: LiveTorchServe) -> None:
    data = mnist_samples(1)[0][0]
    plain = torchserve.predict("mnist_cnn", data, PNG_HEADERS).json()
    asked = torchserve.predict("mnist_cnn", data, {**PNG_HEADERS, "X-Return-Image": "1"}).json()
    assert "image" not in plain
    assert base64.b64decode(asked["image"]).startswith(b"\x89PNG")
    assert asked["probabilities"] == plain["probabilities"]


def test_concurrent_requests_are_batched(torchserve: LiveTorchServe) -> None:
    bodies = [canvas_digit(280 + i) for i in range(24)]
    responses = post_many(torchserve, "mnist_cnn", bodies)
    assert [r.status_code for r in responses] == [200] * len(bodies)
    sizes = [int(r.headers["X-Batch-Size"]) for r in responses]
    assert max(sizes) > 1, f"no request shared a batch: {sizes}"


def test_a_bad_image_fails_alone_inside_a_batch(torchserve: LiveTorchServe) -> None:
    good, bad = canvas_digit(), b"\x89PNG\r\n\x1a\n truncated"
    for _ in range(5):  # until a bad image lands in a batch with good ones
        bodies = [good] * 12 + [bad] * 4
        responses = post_many(torchserve, "mnist_mlp", bodies)
        for response in responses[:12]:
            assert response.status_code == 200, response.text
        for response in responses[12:]:
            assert response.status_code == 400
            body = response.json()
            assert body["status"] == 400
            assert "image" in body["error"]
        if any(int(r.headers["X-Batch-Size"]) > 1 for r in responses[12:]):
            return
    pytest.fail("no bad image shared a batch with good ones in 5 rounds")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"%PDF-1.4 not an image", 400),
        (png_bytes(np.zeros((28, 28), np.uint8)), 422),
    ],
)
def test_bad_input_gets_json_4xx_and_the_server_keeps_serving(
    torchserve: LiveTorchServe, data: bytes, status: int
) -> None:
    response = torchserve.predict("mnist_mlp", data, PNG_HEADERS)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert torchserve.predict("mnist_mlp", canvas_digit(), PNG_HEADERS).status_code == 200


def test_requests_without_a_valid_key_are_refused(torchserve: LiveTorchServe) -> None:
    url = f"{torchserve.inference_url}/predictions/mnist_cnn"
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        response = requests.post(
            url, data=canvas_digit(), headers={**headers, **PNG_HEADERS}, timeout=10
        )
        assert response.status_code == 400
        assert response.json()["type"] == "InvalidKeyException"
    ping = requests.get(f"{torchserve.inference_url}/ping", timeout=10)
    assert ping.status_code == 400
    describe = requests.get(f"{torchserve.management_url}/models/mnist_cnn", timeout=10)
    assert describe.status_code == 400


def test_model_registration_api_is_off(torchserve: LiveTorchServe) -> None:
    response = requests.post(
        f"{torchserve.management_url}/models",
        params={"url": "mnist_cnn.mar", "model_name": "another"},
        headers=torchserve.auth("management"),
        timeout=10,
    )
    assert response.status_code == 405


def test_scaling_workers_shows_in_describe(torchserve: LiveTorchServe) -> None:
    url = f"{torchserve.management_url}/models/mnist_mlp"
    auth = torchserve.auth("management")

    def scale(workers: int) -> list[dict]:
        params = {"min_worker": workers, "max_worker": workers, "synchronous": "true"}
        response = requests.put(url, params=params, headers=auth, timeout=60)
        assert response.status_code == 200, response.text
        return torchserve.describe("mnist_mlp")[0]["workers"]

    try:
        workers = scale(2)
        assert len(workers) == 2
        assert {w["status"] for w in workers} == {"READY"}
        description = torchserve.describe("mnist_mlp")[0]
        assert description["minWorkers"] == 2
    finally:
        workers = scale(1)
    assert len(workers) == 1


def test_prometheus_metrics_are_served_without_a_key(torchserve: LiveTorchServe) -> None:
    assert torchserve.predict("mnist_cnn", canvas_digit(), PNG_HEADERS).status_code == 200
    response = requests.get(f"{torchserve.metrics_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert 'ts_inference_requests_total{model_name="mnist_cnn"' in response.text
    assert "HandlerTime" in response.text


@pytest.fixture(scope="module")
def numbers(torchserve: LiveTorchServe) -> list[tuple[bytes, str, list]]:
    """Rows of 3–4 test digits both models read right alone: (PNG, number, digit frames)."""
    chosen = read_right_by_both(torchserve, 4)
    assert len(chosen) == 4, "too few MNIST test digits read correctly by both models"
    orders = [[0, 1, 2], [3, 2, 1, 0], [1, 3, 0]]
    rows = []
    for order in orders:
        data, cells = digit_row([chosen[i][0] for i in order])
        rows.append((data, "".join(str(chosen[i][1]) for i in order), cells))
    return rows


@pytest.mark.data
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_a_number_through_torchserve(torchserve: LiveTorchServe, numbers, model: str) -> None:
    data, expected, cells = numbers[1]
    response = torchserve.predict(model, data, PNG_HEADERS)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["number"] == expected
    assert [d["prediction"] for d in answer["digits"]] == [int(c) for c in expected]
    for digit, cell in zip(answer["digits"], cells, strict=True):
        assert inside(digit["box"], cell), (digit["box"], cell)
    weakest = min(answer["digits"], key=lambda d: d["confidence"])
    assert answer["confidence"] == weakest["confidence"]


@pytest.mark.data
def test_numbers_and_a_bad_image_share_a_batch(torchserve: LiveTorchServe, numbers) -> None:
    bad = b"\x89PNG\r\n\x1a\n truncated"
    for _ in range(5):  # until the bad image lands in a batch with numbers
        bodies = [data for data, _, _ in numbers] * 4 + [bad] * 2
        responses = post_many(torchserve, "mnist_cnn", bodies)
        for response, (_data, expected, _cells) in zip(responses, numbers * 4, strict=False):
            assert response.status_code == 200, response.text
            assert response.json()["number"] == expected
        for response in responses[-2:]:
            assert response.status_code == 400
            assert response.json()["status"] == 400
        if any(int(r.headers["X-Batch-Size"]) > 1 for r in responses[-2:]):
            return
    pytest.fail("no bad image shared a batch with numbers in 5 rounds")
