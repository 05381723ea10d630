"""Fitting the temperature, the pool weights and the abstention thresholds (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.abstention import (
    NOT_A_DIGIT,
    Thresholds,
    abstained,
    decide,
    fit_thresholds,
)
from recognition.calibration import log_softmax
from training import abstain
from training.calibrate import fit_pool_weights, fit_temperature

pytestmark = pytest.mark.unit


def sampled(n: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): T is the right answer."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(n, 10))
    probs = np.exp(log_softmax(logits, temperature))
    labels = np.array([rng.choice(10, p=p) for p in probs])
    return logits, labels


def test_fit_temperature_recovers_the_true_temperature() -> None:
    logits, labels = sampled(4000, 2.0, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_pool_weights_are_never_less_accurate_than_the_best_model() -> None:
    logits, labels = sampled(2000, 1.0, seed=2)
    good = log_softmax(logits)
    noisy = log_softmax(logits + np.random.default_rng(3).normal(0, 4.0, logits.shape))
    weights = fit_pool_weights([({"weak": noisy, "strong": good}, labels)], step=0.25, top=2.0)
    assert weights["strong"] > weights["weak"]


def test_pool_weights_hold_on_every_view() -> None:
    """A model that helps on clean digits but guesses on distorted ones loses its weight."""
    logits, labels = sampled(2000, 1.0, seed=5)
    rng = np.random.default_rng(6)
    first = log_softmax(logits + rng.normal(0, 2.0, logits.shape))
    second = log_softmax(logits + rng.normal(0, 2.0, logits.shape))
    clean = ({"a": first, "b": second}, labels)
    lost = ({"a": log_softmax(rng.normal(0, 20.0, logits.shape)), "b": second}, labels)
    both = fit_pool_weights([clean], step=0.25, top=2.0)
    assert both["a"] > 0 and both["b"] > 0  # two noisy views of the truth: pooling pays
    weights = fit_pool_weights([clean, lost], step=0.25, top=2.0)
    assert weights["a"] == 0 and weights["b"] > 0


def test_thresholds_abstain_on_at_most_the_allowed_share_of_digits() -> None:
    rng = np.random.default_rng(4)
    probs = np.exp(log_softmax(rng.normal(0, 4.0, size=(1000, 10))))
    scores = rng.normal(10.0, 2.0, size=1000)
    thresholds = fit_thresholds(probs, scores, false_rate=0.01)
    assert abstained(probs, scores, thresholds).mean() <= 0.01


def test_decide_names_the_two_digits_or_says_not_a_digit() -> None:
    rule = Thresholds(min_score=5.0, min_confidence=0.6)
    torn = np.full(10, 0.01)
    torn[4], torn[9] = 0.47, 0.45
    assert decide(torn, 9.0, rule) == (True, "unsure: 4 or 9")
    assert decide(np.full(10, 0.1), 9.0, rule) == (True, NOT_A_DIGIT)
    sure = np.full(10, 0.01)
    sure[3] = 0.91
    assert decide(sure, 9.0, rule) == (False, None)
    assert decide(sure, 1.0, rule) == (True, NOT_A_DIGIT)  # low evidence wins
    assert decide(sure, 1.0, None) == (False, None)  # no thresholds: no abstention


def test_the_pools_threshold_keeps_a_margin_below_the_allowed_share() -> None:
    """Fitted on 5000 validation digits, the pool abstains on at most FALSE_RATE less one
    standard error of them, and on fresh digits of the same kind stays under FALSE_RATE."""
    rng = np.random.default_rng(7)

    def digits(n: int) -> np.ndarray:
        """Distributions whose top class's margin varies widely, as on real digits."""
        margin = rng.gamma(2.0, 3.0, (n, 1)) * np.eye(10)[0]
        return np.exp(log_softmax(rng.normal(0, 1.0, (n, 10)) + margin))

    fitted = digits(5000)
    flags = np.zeros(5000, bool)
    flags[:10] = True  # ten that every listened-to model calls "not a digit"
    low = abstain.fit_ensemble(fitted, flags)
    share = abstain.ensemble_abstained(fitted, flags, low).mean()
    assert share <= abstain.margined(abstain.FALSE_RATE, 5000) < abstain.FALSE_RATE
    assert share >= abstain.margined(abstain.FALSE_RATE, 5000) - 1 / 5000  # the budget is used
    fresh = digits(50_000)
    assert (fresh.max(axis=1) < low).mean() < abstain.FALSE_RATE - 10 / 5000
