"""The handler's explain path without a server: requests flagged as TorchServe's frontend does."""

from __future__ import annotations

import numpy as np
import pytest

from handlers import explain
from handlers.mnist_handler import MnistHandler
from recognition import attribution
from recognition.preprocessing import preprocess
from tests.handlers.test_mnist_handler import (
    BLANK,
    digit_png,
    handler,
    keep_torch_threads,
    model_dir,
    run_batch,
)

pytestmark = pytest.mark.unit

__all__ = ["handler", "keep_torch_threads", "model_dir"]  # fixtures shared with test_mnist_handler

EXPLAIN = {"explain": "True"}  # what the 0.12 frontend adds to an /explanations request


@pytest.mark.parametrize(
    ("headers", "wanted"),
    [
        ({"explain": "True"}, True),
        ({"explain": bytearray(b"True")}, True),
        ({"explain": "False"}, False),
        ({"explain": "true"}, False),  # the frontend writes exactly "True"
        ({}, False),
    ],
)
def test_requested_reads_the_frontend_flag(headers: dict, wanted: bool) -> None:
    assert explain.requested(headers) is wanted


def test_an_explanation_answers_a_map_for_the_predicted_class(handler: MnistHandler) -> None:
    answers, context = run_batch(handler, [{"body": bytearray(digit_png(1))}], [EXPLAIN])
    (answer,) = answers
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_content_type(0) == "application/json"
    maps = np.asarray(answer["attributions"])
    assert maps.shape == (28, 28)
    assert np.isfinite(maps).all()
    assert answer["target"] == answer["prediction"] == int(np.argmax(answer["probabilities"]))
    assert answer["method"] == "integrated_gradients"
    assert answer["baseline"] == "background"
    assert answer["n_steps"] == attribution.N_STEPS
    assert maps.sum() == pytest.approx(
        answer["logit"] - answer["baseline_logit"] + answer["delta"], abs=1e-3
    )


def test_the_map_is_the_attribution_function_s(handler: MnistHandler) -> None:
    data = digit_png(2)
    (answer,), _ = run_batch(handler, [{"body": bytearray(data)}], [EXPLAIN])
    (direct,) = attribution.integrated_gradients(handler.predictor.model, [preprocess(data)])
    assert direct.target == answer["target"]
    np.testing.assert_allclose(answer["attributions"], direct.attributions, rtol=1e-3, atol=1e-6)


def test_a_mixed_batch_explains_only_the_flagged_requests(handler: MnistHandler) -> None:
    rows = [
        {"body": bytearray(digit_png(3))},
        {"body": bytearray(digit_png(4))},
        {"body": bytearray(b"GIF89a not really")},
        {"body": bytearray(BLANK)},
        {"body": bytearray(digit_png(5))},
    ]
    headers = [EXPLAIN, {}, EXPLAIN, EXPLAIN, EXPLAIN]
    answers, context = run_batch(handler, rows, headers)
    statuses = [context.get_response_status(i)[0] for i in range(len(rows))]
    assert statuses == [200, 200, 400, 422, 200]
    assert "attributions" in answers[0] and "attributions" in answers[4]
    assert set(answers[1]) == {
        *("prediction", "confidence", "probabilities", "abstain", "reason", "digits", "number")
    }
    for i, status in ((2, 400), (3, 422)):
        assert answers[i] == {"error": answers[i]["error"], "status": status}
    plain, _ = run_batch(handler, [rows[0]])
    assert plain[0]["prediction"] == answers[0]["prediction"]
    assert plain[0]["probabilities"] == answers[0]["probabilities"]


def test_an_explanation_can_return_the_image_too(handler: MnistHandler) -> None:
    headers = [{**EXPLAIN, "X-Return-Image": "1"}]
    (answer,), _ = run_batch(handler, [{"body": bytearray(digit_png(6))}], headers)
    assert answer["image"] and len(answer["attributions"]) == 28


def test_rounded_keeps_five_significant_digits() -> None:
    assert explain.rounded(np.array([[1.234567, -0.000123456]])) == [[1.2346, -0.00012346]]
