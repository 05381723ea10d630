"""Calibration maths on NumPy arrays: softmax with a temperature, ECE, reliability, pooling.

Shared by the predictor (temperature), training.calibrate (fitting and reports) and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 15  # equal-width bins over the maximum probability


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log-softmax of logits / temperature, in float64."""
    scaled = np.asarray(logits, np.float64) / float(temperature)
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    return np.exp(log_softmax(logits, temperature))


def nll(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels."""
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def reliability(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, Any]]:
    """Per equal-width bin of the maximum probability: its range, count, confidence, accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        rows.append(
            {
                "lower": round(float(edges[b]), 4),
                "upper": round(float(edges[b + 1]), 4),
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else None,
                "accuracy": float(correct[inside].mean()) if count else None,
            }
        )
    return rows


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ (bin share) × |accuracy − confidence| over the bins."""
    total = len(labels)
    gaps = [
        row["count"] / total * abs(row["accuracy"] - row["confidence"])
        for row in reliability(probabilities, labels, bins)
        if row["count"]
    ]
    return float(sum(gaps))


def pool(log_probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted log-linear pool p ∝ exp(Σ w_m log p_m), as normalised log-probabilities."""
    combined = sum(w * np.asarray(lp, np.float64) for w, lp in zip(weights, log_probs, strict=True))
    return log_softmax(np.asarray(combined))
