"""When an answer should be "I can't tell": thresholds fitted on validation data, pure NumPy.

Two signals per image: the evidence score (log-sum-exp of the raw logits, the negative energy),
low for inputs unlike any training digit; and the calibrated distribution, whose top two
classes say whether the model is torn between two digits or sees none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NOT_A_DIGIT = "does not look like a digit"
UNSURE_MASS = 0.8  # top two classes holding this much make an unsure answer "a or b"


@dataclass(frozen=True)
class Thresholds:
    """Abstain when the score is below `min_score` or the confidence below `min_confidence`."""

    min_score: float
    min_confidence: float
    unsure_mass: float = UNSURE_MASS

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Thresholds | None:
        """The thresholds a checkpoint's meta carries under "abstention", or None."""
        values = meta.get("abstention")
        if not isinstance(values, dict):
            return None
        keys = ("min_score", "min_confidence", "unsure_mass")
        return cls(**{k: float(values[k]) for k in keys if k in values})

    def to_dict(self) -> dict[str, float]:
        """Plain dict for checkpoint meta."""
        return asdict(self)


def evidence(logits: np.ndarray) -> np.ndarray:
    """Negative energy per row: log Σ exp(logit), in float64."""
    values = np.asarray(logits, np.float64)
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def decide(
    probabilities: np.ndarray, score: float, thresholds: Thresholds | None
) -> tuple[bool, str | None]:
    """(abstain, reason) for one image's calibrated distribution and evidence score."""
    if thresholds is None:
        return False, None
    order = np.argsort(probabilities)[::-1]
    first, second = float(probabilities[order[0]]), float(probabilities[order[1]])
    if score < thresholds.min_score:
        return True, NOT_A_DIGIT
    if first >= thresholds.min_confidence:
        return False, None
    if first + second >= thresholds.unsure_mass:
        low, high = sorted((int(order[0]), int(order[1])))
        return True, f"unsure: {low} or {high}"
    return True, NOT_A_DIGIT


def abstained(probabilities: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Boolean mask of the rows that `decide` abstains on."""
    return (scores < thresholds.min_score) | (probabilities.max(axis=1) < thresholds.min_confidence)


def fit_thresholds(
    probabilities: np.ndarray, scores: np.ndarray, false_rate: float = 0.01
) -> Thresholds:
    """Thresholds abstaining on at most `false_rate` of these (validation) digits, half each."""
    min_score = float(np.quantile(scores, false_rate / 2))
    kept = scores >= min_score
    confidence = probabilities.max(axis=1)
    budget = max(0, int(np.floor(false_rate * len(scores))) - int((~kept).sum()))
    ranked = np.sort(confidence[kept])
    min_confidence = float(ranked[budget]) if budget < len(ranked) else 1.0
    return Thresholds(min_score=min_score, min_confidence=min_confidence)
