"""Fit and measure abstention: per-model thresholds and the ensemble's, on validation data.

Validation digits (the training runs' held-out split) bound the false abstentions; validation
non-digits (training.nondigits "train" family, a seed never trained on) show what the
thresholds catch; the held-out family (other letters, symbols, shapes, fonts, pens) is only
scored, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recognition.abstention import (
    UNSURE_MASS,
    Thresholds,
    abstained,
    evidence,
    fit_thresholds,
    says_not_a_digit,
)
from recognition.calibration import pool, softmax

FALSE_RATE = 0.01  # at most this share of validation digits may be abstained on
VAL_SEED = 12  # validation non-digits ("train" family, not the fine-tune's seed 11)
HELDOUT_SEED = 13  # held-out non-digits ("heldout" family)
DEV_SEED = 21  # non-digits that detector designs are compared on ("dev" family)


def model_rate(logits: np.ndarray, temperature: float, thresholds: Thresholds) -> float:
    """Share of these images one model abstains on."""
    return float(abstained(softmax(logits, temperature), evidence(logits), thresholds).mean())


def fit_model(digits: np.ndarray, temperature: float, false_rate: float = FALSE_RATE) -> Thresholds:
    """A model's thresholds from its raw logits on the validation digits."""
    return fit_thresholds(softmax(digits, temperature), evidence(digits), false_rate)


def not_a_digit(
    logits: np.ndarray,
    temperature: float,
    thresholds: Thresholds,
    digit: np.ndarray | None = None,
) -> np.ndarray:
    """Rows whose model answers "does not look like a digit" (`says_not_a_digit` on its raw
    logits); `digit`: the detector's verdicts, when the model has one."""
    return says_not_a_digit(softmax(logits, temperature), evidence(logits), thresholds, digit)


def pooled(
    logits: Sequence[np.ndarray], temperatures: Sequence[float], weights: Sequence[float]
) -> np.ndarray:
    """The ensemble's distribution: the weighted log-linear pool of calibrated models."""
    calibrated = [softmax(z, t) for z, t in zip(logits, temperatures, strict=True)]
    return pooled_probabilities(calibrated, weights)


def pooled_probabilities(
    probabilities: Sequence[np.ndarray], weights: Sequence[float]
) -> np.ndarray:
    """The weighted log-linear pool of calibrated distributions (rows sum to 1)."""
    logs = [np.log(np.clip(p, 1e-12, None)) for p in probabilities]
    return np.exp(pool(logs, weights))


def ensemble_abstained(
    pooled_probs: np.ndarray, all_flag: np.ndarray, min_conf: float
) -> np.ndarray:
    """The web UI's rule: every model the pool listens to (`all_flag`) says "not a digit", or
    the pool's confidence is too low."""
    return all_flag | (pooled_probs.max(axis=1) < min_conf)


def margined(rate: float, n: int) -> float:
    """`rate` less one standard error of a share `rate` measured on `n` images: a threshold fitted
    for exactly `rate` on the validation digits exceeds it on new digits about half the time."""
    return rate - float(np.sqrt(rate * (1 - rate) / n))


def fit_ensemble(pooled_probs: np.ndarray, all_flag: np.ndarray) -> float:
    """The pool's minimum confidence keeping validation digit abstentions within FALSE_RATE,
    less one standard error (`margined`)."""
    n = len(pooled_probs)
    budget = int(np.floor(margined(FALSE_RATE, n) * n)) - int(all_flag.sum())
    ranked = np.sort(pooled_probs[~all_flag].max(axis=1))
    return float(ranked[budget]) if 0 <= budget < len(ranked) else 0.0


def ensemble_config(min_conf: float) -> dict[str, Any]:
    """The abstention part of config/ensemble.json."""
    return {"min_confidence": min_conf, "unsure_mass": UNSURE_MASS}
