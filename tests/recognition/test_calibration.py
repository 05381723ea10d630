"""Calibration maths and the Predictor's temperature, on fixed arrays and real test digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recognition.calibration import ece, log_softmax, nll, pool, reliability, softmax
from recognition.models import build_model, save_checkpoint
from recognition.predictor import Predictor
from tests.helpers import REPO_ROOT, mnist_test_set

ECE_BOUND = 0.015  # the target on the 10k test digits; a 2000-image sample is held to it too


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    probabilities = np.tile([0.75, 0.25], (8, 1))
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 1])  # 75 % right at 75 % confidence
    assert ece(probabilities, labels) == pytest.approx(0.0)


def test_ece_of_an_overconfident_model() -> None:
    probabilities = np.tile([0.95, 0.05], (10, 1))
    labels = np.array([0] * 5 + [1] * 5)  # 50 % right at 95 %
    assert ece(probabilities, labels) == pytest.approx(0.45)


def test_reliability_has_fifteen_equal_bins() -> None:
    rows = reliability(np.tile([0.5, 0.5], (3, 1)), np.array([0, 1, 0]))
    assert len(rows) == 15
    assert sum(r["count"] for r in rows) == 3
    assert rows[0]["lower"] == 0.0 and rows[-1]["upper"] == 1.0


def test_temperature_softens_and_sharpens() -> None:
    logits = np.array([[2.0, 0.0, -1.0]])
    assert softmax(logits, 2.0).max() < softmax(logits).max() < softmax(logits, 0.5).max()
    np.testing.assert_allclose(softmax(logits).sum(), 1.0)


def test_pool_is_a_weighted_log_linear_combination() -> None:
    a = np.log(np.array([[0.7, 0.2, 0.1]]))
    b = np.log(np.array([[0.2, 0.6, 0.2]]))
    expected = np.exp(0.3 * a + 0.9 * b)
    expected /= expected.sum()
    np.testing.assert_allclose(np.exp(pool([a, b], [0.3, 0.9])), expected)
    np.testing.assert_allclose(np.exp(pool([a, b], [1.0, 0.0])), np.exp(a))  # weight 0 = absent


def test_nll_of_a_certain_right_answer_is_zero() -> None:
    assert nll(log_softmax(np.array([[50.0, 0.0]])), np.array([0])) == pytest.approx(0.0)


def test_predictor_divides_logits_by_the_checkpoint_temperature(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("mlp")
    save_checkpoint(tmp_path / "plain.pt", model, "mlp", {}, {})
    save_checkpoint(tmp_path / "hot.pt", model, "mlp", {}, {"temperature": 2.5})
    images = [np.random.default_rng(i).random((28, 28), dtype=np.float32) for i in range(4)]
    plain, hot = (Predictor.from_checkpoint(tmp_path / n) for n in ("plain.pt", "hot.pt"))
    assert plain.temperature == 1.0 and hot.temperature == 2.5
    logits = plain.logits(images)
    np.testing.assert_allclose(plain.probabilities(images), softmax(logits), atol=1e-6)
    np.testing.assert_allclose(hot.probabilities(images), softmax(logits, 2.5), atol=1e-6)


@pytest.mark.data
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_committed_models_are_calibrated_on_real_test_digits(arch: str) -> None:
    images, labels = mnist_test_set()
    picks = np.arange(0, len(images), 5)  # a fixed sample of 2000 test digits
    predictor = Predictor.from_checkpoint(REPO_ROOT / "weights" / f"mnist_{arch}.pt")
    assert predictor.temperature != 1.0, "the committed checkpoint carries no fitted temperature"
    probabilities = predictor.probabilities([images[i] / np.float32(255.0) for i in picks])
    assert ece(probabilities, labels[picks]) <= ECE_BOUND
