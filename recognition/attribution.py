"""Why a model chose its digit: integrated-gradients attribution maps over the 28×28 input.

Pure functions over a model and preprocessed images ([0, 1] floats, 28×28, digit bright on a 0
background, as `recognition.preprocessing.preprocess` returns them). The baseline is the
all-background image: zeros before normalisation, i.e. -MEAN/STD after it, so an attribution
says how much each pixel's ink moved the target logit away from "an empty input".
Attributions are in the model's input space (normalised pixels); by completeness their sum is
close to logit(x) - logit(baseline) for the target class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from captum.attr import IntegratedGradients
from torch import nn

from recognition.constants import IMAGE_SIZE
from recognition.preprocessing import normalize

METHOD = "integrated_gradients"
BASELINE = "background"  # the all-background image: 0 before normalisation, -MEAN/STD after
# Gauss-Legendre steps: 16 keep |sum - (f(x) - f(baseline))| within a few % of the logit gap
# on real digits and one explanation under 50 ms on one CPU core (docs/serving.md).
N_STEPS = 16
INTERNAL_BATCH_SIZE = 64  # rows of one forward/backward pass (images × steps)


@dataclass
class Explanation:
    """One image's attribution map for its target class and the logits it accounts for."""

    attributions: np.ndarray  # float32, 28×28
    target: int
    logit: float  # target logit at the input
    baseline_logit: float  # target logit at the baseline
    delta: float  # sum(attributions) - (logit - baseline_logit): the approximation error


def background(size: int = IMAGE_SIZE) -> np.ndarray:
    """The all-background image a preprocessed digit sits on (zeros, before normalisation)."""
    return np.zeros((size, size), np.float32)


def as_input(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Normalised N×1×28×28 model input of [0, 1] images on a device."""
    stacked = np.stack([normalize(np.asarray(image, np.float32)) for image in images])
    return torch.from_numpy(stacked).unsqueeze(1).to(device)


def target_logits(model: nn.Module, inputs: torch.Tensor, targets: Sequence[int]) -> np.ndarray:
    """The logit of each row's target class (float64, shape N)."""
    with torch.inference_mode():
        logits = model(inputs).double().cpu().numpy()
    return logits[np.arange(len(targets)), list(targets)]


def predicted(model: nn.Module, inputs: torch.Tensor) -> list[int]:
    """The class each row's logits rank first."""
    with torch.inference_mode():
        return [int(c) for c in model(inputs).argmax(dim=1).cpu()]


def integrated_gradients(
    model: nn.Module,
    images: Sequence[np.ndarray],
    targets: Sequence[int] | None = None,
    *,
    baseline: np.ndarray | None = None,
    n_steps: int = N_STEPS,
    internal_batch_size: int = INTERNAL_BATCH_SIZE,
) -> list[Explanation]:
    """Integrated gradients of each image's target logit (default: the predicted class)."""
    if len(images) == 0:
        return []
    model.eval()
    device = next(model.parameters()).device
    inputs = as_input(images, device)
    base = as_input([background() if baseline is None else baseline] * len(images), device)
    targets = predicted(model, inputs) if targets is None else [int(t) for t in targets]
    with torch.enable_grad():
        maps = IntegratedGradients(model).attribute(
            inputs,
            baselines=base,
            target=targets,
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=max(internal_batch_size, len(images)),
        )
    maps = maps.detach().squeeze(1).float().cpu().numpy()
    at_input = target_logits(model, inputs, targets)
    at_base = target_logits(model, base, targets)
    return [
        Explanation(
            attributions=maps[i],
            target=targets[i],
            logit=float(at_input[i]),
            baseline_logit=float(at_base[i]),
            delta=float(maps[i].astype(np.float64).sum() - (at_input[i] - at_base[i])),
        )
        for i in range(len(images))
    ]


def ink_share(
    attributions: np.ndarray, image: np.ndarray, threshold: float = 0.1, dilate: int = 1
) -> float:
    """Share of |attribution| on the digit's pixels (image > threshold, grown by `dilate` px)."""
    ink = (np.asarray(image) > threshold).astype(np.uint8)
    if dilate > 0:
        ink = cv2.dilate(ink, np.ones((3, 3), np.uint8), iterations=dilate)
    magnitude = np.abs(np.asarray(attributions, np.float64))
    total = float(magnitude.sum())
    return float(magnitude[ink.astype(bool)].sum()) / total if total > 0 else 0.0
