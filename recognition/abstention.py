"""When an answer should be "I can't tell": thresholds fitted on validation data, pure NumPy.

Three signals per image: the evidence score (log-sum-exp of the raw logits, the negative
energy), low for inputs unlike any training digit; the calibrated distribution, whose top two
classes say whether the model is torn between two digits or sees none; and, when the checkpoint
carries one, a digit detector: a logistic score over the model's penultimate features, its
logits, the evidence and (with a digit memory) the familiarity, how close the image comes to
the nearest of the training digits the model remembers, fitted on training digits against
generated non-digits (training.detector).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

NOT_A_DIGIT = "does not look like a digit"
UNSURE_MASS = 0.8  # top two classes holding this much make an unsure answer "a or b"


def evidence(logits: np.ndarray) -> np.ndarray:
    """Negative energy per row: log Σ exp(logit), in float64."""
    values = np.asarray(logits, np.float64)
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def detector_inputs(
    features: np.ndarray, logits: np.ndarray, familiarity: np.ndarray | None = None
) -> np.ndarray:
    """What the digit detector reads per row: the features, the logits, the evidence and, when
    given, the familiarity."""
    z = np.asarray(logits, np.float64)
    columns = [np.asarray(features, np.float64), z, evidence(z)[:, None]]
    if familiarity is not None:
        columns.append(np.asarray(familiarity, np.float64).reshape(-1, 1))
    return np.concatenate(columns, axis=1)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero), float32."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Memory:
    """Training digits as one model sees them: the unit rows of their probes (the model's
    `embed(...).probe`) projected on `basis` (D×d). An image's familiarity is the cosine
    similarity of its projected probe to the nearest remembered digit: high for anything drawn
    like some training digit, whatever the non-digits the detector was fitted against."""

    def __init__(self, basis: np.ndarray, bank: np.ndarray) -> None:
        self.basis = np.asarray(basis, np.float32)
        self.bank = unit_rows(bank).astype(np.float16)  # stored at half precision
        self._rows = self.bank.astype(np.float32).T  # d×N, for the product
        if self.basis.ndim != 2 or self.bank.ndim != 2 or self.basis.shape[1] != len(self._rows):
            raise ValueError("memory basis and bank do not fit")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Memory):
            return NotImplemented
        return np.array_equal(self.basis, other.basis) and np.array_equal(self.bank, other.bank)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Memory({len(self.bank)} digits, {self.basis.shape[0]}→{self.basis.shape[1]})"

    def familiarity(self, probe: np.ndarray) -> np.ndarray:
        """Per row of `probe` (N×D), the cosine similarity to the nearest remembered digit."""
        queries = unit_rows(np.asarray(probe, np.float32) @ self.basis)
        return (queries @ self._rows).max(axis=1).astype(np.float64)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Memory:
        """The memory of a checkpoint meta's entry (arrays, or the tensors a checkpoint holds)."""
        return cls(np.asarray(values["basis"]), np.asarray(values["bank"]))

    def to_dict(self) -> dict[str, Any]:
        """Arrays for checkpoint meta (`recognition.models` stores them as tensors)."""
        return {"basis": self.basis, "bank": self.bank}


@dataclass(frozen=True)
class Detector:
    """A logistic digit-vs-non-digit score w·(x − center)/scale + bias over `detector_inputs`
    (with the familiarity column when `familiar`); below `min_score`, the image does not look
    like a digit."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    min_score: float
    familiar: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Detector:
        """The detector of a checkpoint meta's "abstention"/"detector" entry."""
        vectors = {k: tuple(float(v) for v in values[k]) for k in ("center", "scale", "weights")}
        if len({len(v) for v in vectors.values()}) != 1:
            raise ValueError("detector vectors differ in length")
        return cls(
            **vectors,
            bias=float(values["bias"]),
            min_score=float(values["min_score"]),
            familiar=bool(values.get("familiar", False)),
        )

    def score(
        self, features: np.ndarray, logits: np.ndarray, familiarity: np.ndarray | None = None
    ) -> np.ndarray:
        """Digit score per row (higher: more like a training digit)."""
        if self.familiar and familiarity is None:
            raise ValueError("this detector reads the familiarity: pass it")
        inputs = detector_inputs(features, logits, familiarity if self.familiar else None)
        x = (inputs - np.asarray(self.center)) / np.asarray(self.scale)
        return x @ np.asarray(self.weights) + self.bias

    def passes(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Per score, whether it is high enough to look like a digit."""
        return np.asarray(scores, np.float64).reshape(-1) >= self.min_score


@dataclass(frozen=True)
class Thresholds:
    """Abstain when the evidence is below `min_score`, the confidence below `min_confidence`,
    or the detector's score (when there is a detector) below its `min_score`."""

    min_score: float
    min_confidence: float
    unsure_mass: float = UNSURE_MASS
    detector: Detector | None = None
    # one digit rather than two touching (fitted against merged pairs, training.pairs): only
    # the line reader's choice between reading a group whole or cut uses it
    single: Detector | None = None
    memory: Memory | None = None  # what a `familiar` detector compares an image with

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Thresholds | None:
        """The thresholds a checkpoint's meta carries under "abstention", or None."""
        values = meta.get("abstention")
        if not isinstance(values, dict):
            return None
        keys = ("min_score", "min_confidence", "unsure_mass")
        found = {k: float(values[k]) for k in keys if k in values}
        detector, single, memory = (values.get(k) for k in ("detector", "single", "memory"))
        return cls(
            **found,
            detector=Detector.from_dict(detector) if detector else None,
            single=Detector.from_dict(single) if single else None,
            memory=Memory.from_dict(memory) if memory else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoint meta."""
        values = asdict(replace(self, memory=None))
        values["memory"] = None if self.memory is None else self.memory.to_dict()
        return {k: v for k, v in values.items() if v is not None}

    def familiarity(self, probe: np.ndarray | None) -> np.ndarray | None:
        """The memory's familiarity of each row of `probe`, None without a memory or probe."""
        if self.memory is None or probe is None:
            return None
        return self.memory.familiarity(probe)

    def reading_scores(
        self, features: np.ndarray, logits: np.ndarray, familiarity: np.ndarray | None = None
    ) -> np.ndarray:
        """Per row, how much the image looks like one digit to the line reader: the detector's
        score, or the single-digit score where that is lower (a merged pair looks like a digit
        to the detector). `familiarity`: of `familiarity(probe)`, for a familiar detector."""
        return self.verdicts(features, logits, familiarity)[1]

    def verdicts(
        self, features: np.ndarray, logits: np.ndarray, familiarity: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row, whether the detector lets the image through and its `reading_scores`, from
        one pass of the detector."""
        if self.detector is None:
            raise ValueError("no detector to score with")
        scores = self.detector.score(features, logits, familiarity)
        reading = (
            scores
            if self.single is None
            else np.minimum(scores, self.single.score(features, logits, familiarity))
        )
        return self.detector.passes(scores), reading

    def looks_like_a_digit(
        self, features: np.ndarray, logits: np.ndarray, familiarity: np.ndarray | None = None
    ) -> np.ndarray:
        """Per row, whether the detector lets the image through (all rows without a detector)."""
        if self.detector is None:
            return np.ones(len(logits), bool)
        return self.detector.passes(self.detector.score(features, logits, familiarity))


def _flagged(top: Any, top_two: Any, score: Any, digit: Any, thresholds: Thresholds) -> Any:
    """The NOT_A_DIGIT rule, for one image (NumPy scalars) or many (arrays): the evidence is
    low, the detector refuses it, or the model is unsure without two classes holding
    `unsure_mass` between them. Not (x >= threshold), rather than x < threshold: a NaN
    distribution is no digit either."""
    unsure = ~((top >= thresholds.min_confidence) | (top_two >= thresholds.unsure_mass))
    return (score < thresholds.min_score) | unsure | ~digit


def says_not_a_digit(
    probabilities: np.ndarray,
    scores: np.ndarray,
    thresholds: Thresholds,
    digit: np.ndarray | None = None,
) -> np.ndarray:
    """Per row, whether `decide` answers NOT_A_DIGIT (`digit`: the detector's verdicts, when
    there is one)."""
    probs = np.asarray(probabilities, np.float64)
    top_two = np.sort(probs, axis=1)[:, -2:].sum(axis=1)
    passed = np.True_ if digit is None else np.asarray(digit, bool)
    return _flagged(probs.max(axis=1), top_two, np.asarray(scores, np.float64), passed, thresholds)


def decide(
    probabilities: np.ndarray, score: float, thresholds: Thresholds | None, digit: bool = True
) -> tuple[bool, str | None]:
    """(abstain, reason) for one image's calibrated distribution, evidence score and whether
    the detector takes it for a digit."""
    if thresholds is None:
        return False, None
    order = np.argsort(probabilities)[::-1]
    first, second = np.float64(probabilities[order[0]]), np.float64(probabilities[order[1]])
    if _flagged(first, first + second, np.float64(score), np.bool_(digit), thresholds):
        return True, NOT_A_DIGIT
    if first >= thresholds.min_confidence:
        return False, None
    low, high = sorted((int(order[0]), int(order[1])))
    return True, f"unsure: {low} or {high}"


def abstained(
    probabilities: np.ndarray,
    scores: np.ndarray,
    thresholds: Thresholds,
    digit: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of the rows that `decide` abstains on (`digit`: the detector's verdicts)."""
    low = (scores < thresholds.min_score) | (probabilities.max(axis=1) < thresholds.min_confidence)
    return low if digit is None else low | ~digit


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
