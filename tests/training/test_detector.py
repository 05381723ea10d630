"""The digit detector: its logistic fit, its round trip through checkpoint meta, its verdicts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from recognition.abstention import (
    NOT_A_DIGIT,
    Detector,
    Memory,
    Thresholds,
    decide,
    detector_inputs,
)
from recognition.models import build_model, load_checkpoint, save_checkpoint
from recognition.predictor import Predictor
from tests.helpers import mnist_test_set
from training import abstain
from training.config import weights_path
from training.detector import fit_logistic, fit_memory
from training.nondigits import generate
from training.pairs import merged_pairs

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
    thresholds = Thresholds(
        min_score=1.0, min_confidence=0.5, detector=detector(3), single=detector(3)
    )
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model("mlp"), "mlp", {}, {"abstention": thresholds.to_dict()})
    _, meta = load_checkpoint(path)  # weights_only: only plain floats, tuples and dicts
    assert Thresholds.from_meta(meta) == thresholds


def test_a_memory_survives_checkpoint_meta(tmp_path) -> None:
    """The memory's arrays go into the checkpoint as tensors (a weights-only load refuses NumPy
    arrays) and come back as the same arrays."""
    rng = np.random.default_rng(0)
    memory = Memory(rng.normal(size=(6, 3)), rng.normal(size=(20, 3)))
    familiar = replace(detector(3), weights=(0.0,) * 14 + (1.0,), center=(0.0,) * 15)
    familiar = replace(familiar, scale=(1.0,) * 15, familiar=True)
    thresholds = Thresholds(1.0, 0.5, detector=familiar, memory=memory)
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model("mlp"), "mlp", {}, {"abstention": thresholds.to_dict()})
    _, meta = load_checkpoint(path)
    assert Thresholds.from_meta(meta) == thresholds
    assert Thresholds.from_meta(meta) != replace(thresholds, memory=Memory(np.eye(6, 3), np.eye(3)))


def test_familiarity_is_the_cosine_to_the_nearest_remembered_digit() -> None:
    memory = Memory(np.eye(4, 2), np.array([[2.0, 0.0], [1.0, 1.0]]))
    probe = np.array([[5.0, 0.0, 9.0, 9.0], [0.0, 3.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]])
    # the basis keeps the first two coordinates; [0, 3] is 45° from [1, 1], [-1, 0] 135°
    expected = [1.0, np.sqrt(0.5), -np.sqrt(0.5)]
    np.testing.assert_allclose(memory.familiarity(probe), expected, atol=1e-3)  # half precision


def test_a_familiar_detector_reads_the_familiarity_column() -> None:
    weights = (0.0,) * 13 + (1.0,)
    familiar = Detector((0.0,) * 14, (1.0,) * 14, weights, 0.0, 0.5, familiar=True)
    memory = Memory(np.eye(2), np.array([[1.0, 0.0]]))
    thresholds = Thresholds(-100.0, 0.5, detector=familiar, memory=memory)
    features, logits = np.zeros((2, 2)), np.zeros((2, 10))
    known = thresholds.familiarity(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert thresholds.looks_like_a_digit(features, logits, known).tolist() == [True, False]
    with pytest.raises(ValueError, match="familiarity"):
        familiar.score(features, logits)


def test_the_detector_alone_makes_an_answer_not_a_digit() -> None:
    thresholds = Thresholds(min_score=-100.0, min_confidence=0.5, detector=detector(2))
    features = np.array([[3.0, 0.0], [0.5, 0.0]])
    logits = np.zeros((2, 10))
    digit = thresholds.looks_like_a_digit(features, logits)
    assert digit.tolist() == [True, False]
    confident = np.eye(10)[3]
    assert decide(confident, 0.0, thresholds, bool(digit[0])) == (False, None)
    assert decide(confident, 0.0, thresholds, bool(digit[1])) == (True, NOT_A_DIGIT)


def test_the_line_reader_scores_the_lower_of_the_two() -> None:
    """A merged pair can look like a digit to the detector and still like two to the
    single-digit score: the reading score is the lower of them."""
    single = replace(detector(2), weights=(0.0, 1.0) + (0.0,) * 11, bias=0.0)
    thresholds = Thresholds(-100.0, 0.5, detector=detector(2), single=single)
    features = np.array([[3.0, -4.0], [0.5, 5.0]])
    scores = thresholds.reading_scores(features, np.zeros((2, 10)))
    assert scores.tolist() == [-4.0, -0.5]
    alone = replace(thresholds, single=None).reading_scores(features, np.zeros((2, 10)))
    assert alone.tolist() == [2.0, -0.5]
    passes, reading = thresholds.verdicts(features, np.zeros((2, 10)))
    assert reading.tolist() == scores.tolist()
    looks = thresholds.looks_like_a_digit(features, np.zeros((2, 10)))
    assert passes.tolist() == looks.tolist()


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
        features, logits, probe = model.embed(torch.zeros(1, 1, 28, 28))
    familiar = thresholds.detector.familiar
    assert familiar == (probe is not None) == (thresholds.memory is not None)
    width = features.shape[1] + logits.shape[1] + 1 + int(familiar)
    assert len(thresholds.detector.weights) == width
    if familiar:
        assert thresholds.memory.basis.shape[0] == probe.shape[1]


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Share of (positive, negative) pairs that the scores put in the right order."""
    return float((positive[:, None] > negative[None, :]).mean())


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_the_single_digit_score_tells_one_test_digit_from_two_touching(arch: str) -> None:
    """300 MNIST test digits against 300 merged pairs of other test digits (never trained on):
    the committed single-digit score ranks the digits above the pairs, and more of them than
    the detector does, which never saw a pair (single / detector: MLP 0.980 / 0.970, CNN
    0.990 / 0.954)."""
    predictor = Predictor.from_checkpoint(weights_path(arch))
    thresholds = predictor.thresholds
    assert thresholds is not None and thresholds.single is not None
    assert thresholds.detector is not None
    images, _ = mnist_test_set()
    digits = [image.astype(np.float32) / 255.0 for image in images[:300]]
    pairs = list(merged_pairs(images[300:900], 300, seed=0))
    embedded = [predictor.embed(x) for x in (digits, pairs)]
    single = auc(*(thresholds.single.score(f, z) for f, z, _ in embedded))
    assert single > 0.975
    assert single > auc(
        *(thresholds.detector.score(f, z, thresholds.familiarity(p)) for f, z, p in embedded)
    )


def test_a_predictor_with_a_detector_judges_an_empty_batch() -> None:
    probabilities, verdicts, scores = Predictor.from_checkpoint(weights_path("cnn")).judge([])
    assert probabilities.shape == (0, 10) and verdicts == [] and scores == []


def test_the_cnn_remembers_test_digits_better_than_dev_family_non_digits() -> None:
    """The committed CNN's memory: 300 MNIST test digits (never remembered) come closer to some
    remembered digit than 300 dev-family non-digits (never fitted on) do (AUC 0.9 here), and
    with its familiar detector the CNN abstains on most of those non-digits and on few digits
    (0.7 % / 77 % of the 5,000 validation digits / 2,000 dev-family non-digits)."""
    predictor = Predictor.from_checkpoint(weights_path("cnn"))
    thresholds = predictor.thresholds
    assert thresholds is not None and thresholds.memory is not None
    images, _ = mnist_test_set()
    digits = [image.astype(np.float32) / 255.0 for image in images[:300]]
    others = list(generate("dev", 300, seed=abstain.DEV_SEED + 1))
    known = [thresholds.familiarity(predictor.embed(x)[2]) for x in (digits, others)]
    assert auc(*known) > 0.85
    caught = [np.mean([a for a, _ in predictor.judge(x).verdicts]) for x in (digits, others)]
    assert caught[0] < 0.02 and caught[1] > 0.7


def test_fit_memory_projects_on_the_leading_directions() -> None:
    rng = np.random.default_rng(1)
    probe = np.c_[rng.normal(0, 5, (200, 2)), rng.normal(0, 0.01, (200, 3))]
    memory = fit_memory(probe, width=2)
    assert memory.basis.shape == (5, 2) and memory.bank.shape == (200, 2)
    assert np.abs(memory.basis[2:]).max() < 0.05  # the noise directions are left out
    assert memory.familiarity(probe[:5]).min() > 0.999  # each remembered row finds itself
