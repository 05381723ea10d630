"""The digit detector: its logistic fit, its round trip through checkpoint meta, its verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recognition.abstention import NOT_A_DIGIT, Detector, Thresholds, decide, detector_inputs
from recognition.models import build_model, load_checkpoint, save_checkpoint
from recognition.predictor import Predictor
from training.config import weights_path
from training.detector import fit_logistic

pytestmark = pytest.mark.unit


def test_fit_logistic_separates_two_clouds() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(2.0, 1.0, (300, 4)), rng.normal(-2.0, 1.0, (100, 4))])
    positive = np.r_[np.ones(300, bool), np.zeros(100, bool)]
    center, scale, weights, bias = fit_logistic(x, positive)
    scores = ((x - center) / scale) @ weights + bias[0]
    assert np.mean((scores > 0) == positive) > 0.97


def detector(width: int) -> Detector:
    """A detector whose score is the first feature minus 1."""
    weights = (1.0,) + (0.0,) * (width + 10)
    return Detector((0.0,) * (width + 11), (1.0,) * (width + 11), weights, -1.0, 0.0)


def test_a_detector_survives_checkpoint_meta(tmp_path) -> None:
    thresholds = Thresholds(min_score=1.0, min_confidence=0.5, detector=detector(3))
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model("mlp"), "mlp", {}, {"abstention": thresholds.to_dict()})
    _, meta = load_checkpoint(path)  # weights_only: only plain floats, tuples and dicts
    assert Thresholds.from_meta(meta) == thresholds


def test_the_detector_alone_makes_an_answer_not_a_digit() -> None:
    thresholds = Thresholds(min_score=-100.0, min_confidence=0.5, detector=detector(2))
    features = np.array([[3.0, 0.0], [0.5, 0.0]])
    logits = np.zeros((2, 10))
    digit = thresholds.looks_like_a_digit(features, logits)
    assert digit.tolist() == [True, False]
    confident = np.eye(10)[3]
    assert decide(confident, 0.0, thresholds, bool(digit[0])) == (False, None)
    assert decide(confident, 0.0, thresholds, bool(digit[1])) == (True, NOT_A_DIGIT)


def test_detector_inputs_are_features_logits_and_evidence() -> None:
    x = detector_inputs(np.ones((2, 3)), np.zeros((2, 10)))
    assert x.shape == (2, 14)
    assert x[0, -1] == pytest.approx(np.log(10))


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_the_committed_checkpoints_carry_a_detector_sized_for_their_features(arch: str) -> None:
    model, meta = load_checkpoint(weights_path(arch))
    thresholds = Thresholds.from_meta(meta)
    assert thresholds is not None and thresholds.detector is not None
    with torch.inference_mode():
        features, logits = model.embed(torch.zeros(1, 1, 28, 28))
    assert len(thresholds.detector.weights) == features.shape[1] + logits.shape[1] + 1


def test_a_predictor_with_a_detector_judges_an_empty_batch() -> None:
    probabilities, verdicts, scores = Predictor.from_checkpoint(weights_path("cnn")).judge([])
    assert probabilities.shape == (0, 10) and verdicts == [] and scores == []
