"""Other writers' styles, drawn onto MNIST digits for training (issue 11, failure class 4).

Each transform takes one digit on its augmentation canvas (float32 in [0, 1], ink bright) and a
NumPy generator, and returns a new canvas; `apply_styles` picks them per sample by the
probabilities of `training.augment.AugmentConfig`. They imitate what other writers' digits look
like after preprocessing:

- stretched to fill their box (forms with 16×16 boxes, envelopes): a thin 1 becomes a block;
- cut by the image edge (tight crops): a band of the digit is missing on one side;
- a European 1 (a flag at the top, often a base) and a crossed 7;
- strokes broken into fragments (felt tip on grainy paper, faint pencil), very fat strokes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

INK_LEVEL = 0.2  # canvas pixels above this are the digit's ink
ONE, SEVEN = 1, 7


class StyleOdds(Protocol):
    """The probabilities `apply_styles` reads (training.augment.AugmentConfig has them)."""

    p_stretch: float
    p_cut: float
    p_serif: float
    p_gaps: float
    p_heavy: float


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right), half-open, of the ink; None for an empty canvas."""
    rows = np.flatnonzero((canvas > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((canvas > INK_LEVEL).any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def stroke_px(canvas: np.ndarray) -> int:
    """The digit's stroke width in canvas pixels (twice its area over its outline), at least 1."""
    mask = (canvas > INK_LEVEL).astype(np.uint8)
    edge = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).sum())
    return max(1, round(2 * int(mask.sum()) / max(edge, 1)))


def stretch_to_box(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Widen or heighten the digit towards a square box (all the way or part of it)."""
    box = ink_box(canvas)
    if box is None:
        return canvas
    top, left, bottom, right = box
    height, width = bottom - top, right - left
    side = max(height, width)
    share = rng.uniform(0.5, 1.0)
    new_h = round(height + share * (side - height))
    new_w = round(width + share * (side - width))
    patch = cv2.resize(canvas[top:bottom, left:right], (new_w, new_h), cv2.INTER_LINEAR)
    out = np.zeros_like(canvas)
    y0 = max(0, min(canvas.shape[0] - new_h, (top + bottom - new_h) // 2))
    x0 = max(0, min(canvas.shape[1] - new_w, (left + right - new_w) // 2))
    out[y0 : y0 + new_h, x0 : x0 + new_w] = patch[: canvas.shape[0], : canvas.shape[1]]
    return out


def cut_at_edge(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blank a band of 3–12 % of the digit's extent on one side, as a tight crop does."""
    box = ink_box(canvas)
    if box is None:
        return canvas
    top, left, bottom, right = box
    out = canvas.copy()
    side = int(rng.integers(4))
    extent = (bottom - top) if side < 2 else (right - left)
    band = max(1, round(rng.uniform(0.03, 0.12) * extent))
    if side == 0:
        out[top : top + band] = 0
    elif side == 1:
        out[bottom - band : bottom] = 0
    elif side == 2:
        out[:, left : left + band] = 0
    else:
        out[:, right - band : right] = 0
    return out


def _row_centre(canvas: np.ndarray, row: int) -> float | None:
    """Mean column of the ink on `row`, None when the row has none."""
    cols = np.flatnonzero(canvas[row] > INK_LEVEL)
    return float(cols.mean()) if cols.size else None


def _line(canvas: np.ndarray, a: tuple[float, float], b: tuple[float, float], width: int) -> None:
    """Draw an anti-aliased stroke from a to b ((x, y) in canvas pixels) in place."""
    pa, pb = (round(a[0] * 16), round(a[1] * 16)), (round(b[0] * 16), round(b[1] * 16))
    cv2.line(canvas, pa, pb, 1.0, max(1, width), cv2.LINE_AA, 4)


def add_serif(canvas: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """A European 1 (a flag down-left from the top, a base half the time) or a crossed 7."""
    box = ink_box(canvas)
    if box is None or label not in (ONE, SEVEN):
        return canvas
    top, _, bottom, _ = box
    height, width = bottom - top, stroke_px(canvas)
    out = canvas.copy()
    if label == ONE:
        x_top = _row_centre(canvas, top)
        if x_top is None:
            return canvas
        length = rng.uniform(0.25, 0.45) * height
        angle = np.deg2rad(rng.uniform(25, 60))  # below the horizontal, towards the left
        tip = (x_top - length * np.cos(angle), top + length * np.sin(angle))
        _line(out, (x_top, top), tip, width)
        x_low = _row_centre(canvas, bottom - 1)
        if x_low is not None and rng.random() < 0.5:
            half = rng.uniform(0.15, 0.3) * height
            _line(out, (x_low - half, bottom - 1), (x_low + half, bottom - 1), width)
        return np.clip(out, 0.0, 1.0)
    row = top + round(rng.uniform(0.45, 0.65) * height)
    x_mid = _row_centre(canvas, min(row, bottom - 1))
    if x_mid is None:
        return canvas
    half = rng.uniform(0.15, 0.3) * height
    _line(out, (x_mid - half, row), (x_mid + half, row + rng.uniform(-1.0, 1.0)), width)
    return np.clip(out, 0.0, 1.0)


def break_strokes(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Knock 1–3 small gaps out of the strokes, as grain or a drying felt tip does."""
    ys, xs = np.nonzero(canvas > INK_LEVEL)
    if ys.size == 0:
        return canvas
    out = canvas.copy()
    for pick in rng.choice(ys.size, size=int(rng.integers(1, 4))):
        cv2.circle(out, (int(xs[pick]), int(ys[pick])), 1, 0.0, -1)
    return out


def heavy_pen(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A marker: strokes 2–3 pixels fatter each side."""
    size = 2 * int(rng.integers(2, 4)) + 1
    return cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


Step = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _steps(odds: StyleOdds) -> list[tuple[float, Step]]:
    return [
        (odds.p_heavy, lambda c, _, r: heavy_pen(c, r)),
        (odds.p_serif, add_serif),
        (odds.p_stretch, lambda c, _, r: stretch_to_box(c, r)),
        (odds.p_gaps, lambda c, _, r: break_strokes(c, r)),
        (odds.p_cut, lambda c, _, r: cut_at_edge(c, r)),
    ]


def apply_styles(
    canvases: np.ndarray, labels: np.ndarray | None, odds: StyleOdds, rng: np.random.Generator
) -> np.ndarray:
    """Each canvas (N×S×S) with each style drawn at its probability; `labels` (−1: not a digit,
    or None) gates the serifs."""
    steps = [(p, step) for p, step in _steps(odds) if p > 0]
    if not steps:
        return canvases
    out = canvases.copy()
    for i in range(len(out)):
        label = -1 if labels is None else int(labels[i])
        for p, step in steps:
            if rng.random() < p:
                out[i] = step(out[i], label, rng)
    return out
