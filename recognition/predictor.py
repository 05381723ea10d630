"""A model on a device: batches of preprocessed 28×28 digits in, class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recognition.abstention import Thresholds, decide, evidence
from recognition.calibration import softmax
from recognition.constants import NUM_CLASSES
from recognition.models import load_checkpoint
from recognition.preprocessing import normalize

Verdict = tuple[bool, str | None]  # (abstain, reason)


class Judged(NamedTuple):
    """`Predictor.judge`'s answer for a batch."""

    probabilities: np.ndarray  # calibrated, (N, 10)
    verdicts: list[Verdict]
    digit_scores: list[float] | None  # `Thresholds.reading_scores` per image; None: no detector


class Predictor:
    """Runs one model over batches of `preprocess` outputs ([0, 1] floats, 28×28).

    Probabilities are calibrated: logits are divided by the checkpoint's fitted
    `meta["temperature"]` (1 when absent) before the softmax.
    """

    def __init__(self, model: nn.Module, device: torch.device, meta: dict[str, Any]) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.meta = meta

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: torch.device | str = "cpu") -> Predictor:
        """The predictor of a checkpoint written by `recognition.models.save_checkpoint`."""
        device = torch.device(device)
        model, meta = load_checkpoint(path, device)
        return cls(model, device, meta)

    @property
    def arch(self) -> str:
        """The checkpoint's architecture name."""
        return str(self.meta.get("arch"))

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The normalised N×1×28×28 input tensor on this predictor's device."""
        stacked = np.stack([normalize(image) for image in images])
        return torch.from_numpy(stacked).unsqueeze(1).to(self.device)

    @property
    def temperature(self) -> float:
        """The fitted softmax temperature of the checkpoint, 1.0 when it has none."""
        value = self.meta.get("temperature", 1.0)
        return float(value) if isinstance(value, int | float) and value > 0 else 1.0

    @cached_property
    def thresholds(self) -> Thresholds | None:
        """The abstention thresholds of the checkpoint, None when it has none (read once: a
        digit memory is megabytes)."""
        return Thresholds.from_meta(self.meta)

    def logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw logits (before the temperature): float32 array of shape (N, 10)."""
        if len(images) == 0:
            return np.empty((0, NUM_CLASSES), np.float32)
        with torch.inference_mode():
            return self.model(self.batch(images)).float().cpu().numpy()

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated softmax over the classes for each image: float32 array of shape (N, 10)."""
        return softmax(self.logits(images), self.temperature).astype(np.float32)

    def embed(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Penultimate features, raw logits and probes (`Embedding`; None when the model has
        none), float32 arrays with N ≥ 1 rows."""
        with torch.inference_mode():
            embedded = self.model.embed(self.batch(images))
        return tuple(None if t is None else t.float().cpu().numpy() for t in embedded)

    def judge(self, images: Sequence[np.ndarray]) -> Judged:
        """Calibrated probabilities, per image whether to abstain and why, and the detector's
        digit scores."""
        thresholds = self.thresholds
        scored: list[float] | None = None
        if thresholds is not None and thresholds.detector is not None:
            if len(images):
                features, logits, probe = self.embed(images)
                familiarity = thresholds.familiarity(probe)
                digits, reading = thresholds.verdicts(features, logits, familiarity)
                scored = reading.tolist()
            else:
                logits, scored, digits = self.logits(images), [], np.ones(0, bool)
        else:
            logits = self.logits(images)
            digits = np.ones(len(logits), bool)
        probabilities = softmax(logits, self.temperature).astype(np.float32)
        scores = evidence(logits)
        verdicts = [
            decide(p, float(s), thresholds, bool(d))
            for p, s, d in zip(probabilities, scores, digits, strict=True)
        ]
        return Judged(probabilities, verdicts, scored)
