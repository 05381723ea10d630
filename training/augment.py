"""Batched training augmentation that imitates what real inputs look like after preprocessing.

Geometry (affine + elastic), stroke thickness, blur, down-and-up sampling and contrast are applied
to whole batches in torch; each distorted digit is then re-framed by the serving pipeline's own
`fit_and_center`, so training sees exactly the framing that inference produces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recognition.preprocessing import fit_and_center
from training.styles import apply_styles

CANVAS = 40  # room around the 28×28 digit so rotations and scaling never clip it


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each distortion."""

    p: float = 0.8  # share of samples that are distorted at all
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    aspect: float = 0.15  # ± relative change of width vs height
    shear: float = 0.3
    elastic: float = 0.06  # displacement amplitude, in normalised coordinates
    p_thick: float = 0.25
    p_thin: float = 0.15
    p_blur: float = 0.2
    p_lowres: float = 0.15
    lowres: tuple[int, int] = (8, 16)
    p_gamma: float = 0.3
    # other writers' styles (training.styles), off unless configured
    p_stretch: float = 0.0  # stretched towards a square box, as on forms
    p_cut: float = 0.0  # a band cut off by a tight crop's edge
    p_serif: float = 0.0  # European 1 (flag, base), crossed 7: share of the 1s and 7s
    p_gaps: float = 0.0  # strokes broken by grain or a drying pen
    p_heavy: float = 0.0  # a fat marker

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        """Build from a JSON dict, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown augmentation keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints and metrics."""
        return asdict(self)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def _chosen(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def warp(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random rotation, scale, aspect, shear and a smooth elastic field, per sample."""
    n = x.shape[0]
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen) * math.pi / 180
    scale = _uniform(n, *cfg.scale, gen)
    aspect = _uniform(n, -cfg.aspect, cfg.aspect, gen)
    shear = _uniform(n, -cfg.shear, cfg.shear, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = 1 / (scale * (1 + aspect)), 1 / (scale * (1 - aspect))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = (-sin + shear * cos) * sx
    theta[:, 1, 0] = sin * sy
    theta[:, 1, 1] = (cos + shear * sin) * sy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if cfg.elastic > 0:
        coarse = torch.randn(n, 2, 4, 4, generator=gen) * cfg.elastic
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _morph(x: torch.Tensor, dilate: bool) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1) if dilate else -F.max_pool2d(-x, 3, 1, 1)


def stroke(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Thicken or thin strokes, partially blended, for a random subset."""
    n = x.shape[0]
    out = x.clone()
    for dilate, p in ((True, cfg.p_thick), (False, cfg.p_thin)):
        idx = _chosen(n, p, gen).nonzero().flatten()
        if idx.numel():
            amount = _uniform(idx.numel(), 0.4, 1.0, gen).view(-1, 1, 1, 1)
            out[idx] = torch.lerp(out[idx], _morph(out[idx], dilate), amount)
    return out


def _gaussian_kernels(sigma: torch.Tensor, size: int = 5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(r.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    g = g / g.sum(dim=1, keepdim=True)
    return g[:, :, None] * g[:, None, :]


def blur(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur with a per-sample sigma for a random subset."""
    idx = _chosen(x.shape[0], cfg.p_blur, gen).nonzero().flatten()
    if idx.numel() == 0:
        return x
    out = x.clone()
    kernels = _gaussian_kernels(_uniform(idx.numel(), 0.4, 1.2, gen)).unsqueeze(1)
    sub = out[idx].transpose(0, 1)  # 1×k×H×W, one group per sample
    out[idx] = F.conv2d(sub, kernels, padding=2, groups=idx.numel()).transpose(0, 1)
    return out


def lowres(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Down-sample the 28×28 digit area to 8–16 px and back, like old scans and other datasets."""
    idx = _chosen(x.shape[0], cfg.p_lowres, gen).nonzero().flatten()
    if idx.numel() == 0:
        return x
    out = x.clone()
    side = int(torch.randint(cfg.lowres[0], cfg.lowres[1] + 1, (1,), generator=gen))
    small = round(side * x.shape[-1] / 28)
    down = F.interpolate(out[idx], size=(small, small), mode="area")
    out[idx] = F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out


def gamma(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random gamma for a subset: softer or harder stroke edges."""
    n = x.shape[0]
    g = torch.where(_chosen(n, cfg.p_gamma, gen), _uniform(n, 0.6, 1.6, gen), torch.ones(n))
    return x.clamp(0, 1).pow(g.view(-1, 1, 1, 1))


def _level(a: np.ndarray) -> np.ndarray:
    """Scale ink so strokes reach 1, as preprocessing does (90th percentile of the strokes)."""
    strokes = a[a > 0.2 * a.max()]
    level = float(np.percentile(strokes, 90)) if strokes.size else 1.0
    return np.clip(a / max(level, 1e-6), 0.0, 1.0)


def reframe(x: torch.Tensor) -> torch.Tensor:
    """Run each digit through the serving pipeline's `fit_and_center` (N×1×S×S → N×1×28×28)."""
    arrays = x.squeeze(1).numpy()
    out = np.stack([fit_and_center(_level(a)) for a in arrays])
    return torch.from_numpy(out).unsqueeze(1)


def styles(
    x: torch.Tensor, labels: torch.Tensor | None, cfg: AugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """Other writers' styles (training.styles) on N×1×S×S canvases; −1 labels are no digits."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
    marks = None if labels is None else labels.numpy()
    drawn = apply_styles(x.squeeze(1).numpy(), marks, cfg, np.random.default_rng(seed))
    return torch.from_numpy(drawn).unsqueeze(1)


def augment_batch(
    x: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Distort a random share of a batch (N×1×28×28 in [0, 1]); the rest is returned as is.

    `labels` (N, −1 for a non-digit) let the label-specific styles (serifs) know the digit.
    """
    idx = _chosen(x.shape[0], cfg.p, gen).nonzero().flatten()
    if idx.numel() == 0:
        return x
    pad = (CANVAS - x.shape[-1]) // 2
    sub = warp(F.pad(x[idx], (pad, pad, pad, pad)), cfg, gen)
    sub = styles(sub.clamp(0, 1), None if labels is None else labels[idx], cfg, gen)
    for step in (stroke, blur, lowres, gamma):
        sub = step(sub, cfg, gen)
    out = x.clone()
    out[idx] = reframe(sub.clamp(0, 1))
    return out
