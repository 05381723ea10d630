"""A model on a device: batches of preprocessed 28×28 digits in, class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recognition.constants import NUM_CLASSES
from recognition.models import load_checkpoint
from recognition.preprocessing import normalize


class Predictor:
    """Runs one model over batches of `preprocess` outputs ([0, 1] floats, 28×28)."""

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

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Softmax over the classes for each image: float32 array of shape (N, 10)."""
        if len(images) == 0:
            return np.empty((0, NUM_CLASSES), np.float32)
        with torch.inference_mode():
            logits = self.model(self.batch(images))
            return torch.softmax(logits, dim=1).float().cpu().numpy()
