"""Rows of handwritten digits (a number) from MNIST test digits, on paper, a canvas or a photo.

Pure functions of 28×28 MNIST images and a seeded `numpy.random.Generator`, like
`evalsets.render`: `row_alpha` lays the digits out (gaps from touching to wide, baseline wobble,
a common slant, strokes broken here and there); `paper_row`, `canvas_row` and `photo_row`
render that coverage as a scan, a web-canvas export or a phone photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from evalsets import render

Rng = np.random.Generator

# gap between neighbours as a share of the digit height: (low, high) per kind, and its weight
GAPS = {
    "touching": ((-0.06, 0.0), 0.2),
    "tight": ((0.02, 0.12), 0.3),
    "normal": ((0.12, 0.35), 0.35),
    "wide": ((0.35, 0.9), 0.15),
}
BROKEN_SHARE = 0.15  # digits with a gap in one stroke
PHOTO_FRAME = (1600, 1200)  # width, height of the photos
CANVAS_HEIGHT = 280  # the draw page's wide canvas is 3 × 280 by 280


def ink_columns(alpha: np.ndarray) -> tuple[int, int]:
    """First and one-past-last column holding visible ink."""
    cols = np.flatnonzero((alpha > 0.1).any(axis=0))
    return (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, alpha.shape[1])


def break_stroke(alpha: np.ndarray, rng: Rng) -> np.ndarray:
    """Erase a short stretch of one stroke: a pen that skipped."""
    ys, xs = np.nonzero(alpha > 0.5)
    if ys.size == 0:
        return alpha
    pick = int(rng.integers(ys.size))
    radius = max(1, round(rng.uniform(0.04, 0.08) * alpha.shape[0]))
    hole = np.zeros(alpha.shape, np.uint8)
    cv2.circle(hole, (int(xs[pick]), int(ys[pick])), radius, 1, -1)
    return np.where(hole > 0, 0.0, alpha).astype(np.float32)


def digit_alpha(img28: np.ndarray, height: float, slant: float, pen: str, rng: Rng) -> np.ndarray:
    """One digit's coverage: with `pen` (a `render.PENS` name) or, for "brush", a canvas brush."""
    crop = render.digit_crop(img28)
    angle = rng.uniform(-4, 4)
    if pen != "brush":
        return render.pen_patch(crop, pen, height, angle=angle, shear=slant, rng=rng)
    brush = min(rng.uniform(0.08, 0.16) * height, 0.25 * height)
    affine = render.digit_transform(crop.shape[1], crop.shape[0], height, angle, slant)
    return render.pen_alpha(render.trace_digit(crop), affine, brush, pad=int(brush) + 2)


def row_alpha(
    digits: list[np.ndarray], height: float, pen: str, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """Coverage in [0, 1] of the digits written side by side, and tags saying how."""
    gap_kind = render.choice(rng, {k: w for k, (_, w) in GAPS.items()})
    low, high = GAPS[gap_kind][0]
    slant = rng.uniform(-0.2, 0.2)
    wobble = rng.uniform(0.0, 0.12)  # baseline wobble, share of the height
    patches, broken = [], 0
    for img28 in digits:
        alpha = digit_alpha(img28, height * rng.uniform(0.9, 1.1), slant, pen, rng)
        if rng.random() < BROKEN_SHARE:
            alpha, broken = break_stroke(alpha, rng), broken + 1
        patches.append(alpha)
    pad = round(wobble * height) + 2
    rows = max(p.shape[0] for p in patches) + 2 * pad
    placed, x = [], 0
    for alpha in patches:
        first, last = ink_columns(alpha)
        left = x - first
        placed.append((alpha, left, pad + round(rng.uniform(-wobble, wobble) * height)))
        x = left + last + round(rng.uniform(low, high) * height)
    shift = -min(left for _, left, _ in placed)
    width = max(left + a.shape[1] for a, left, _ in placed) + shift
    out = np.zeros((rows, width), np.float32)
    for alpha, left, top in placed:
        h, w = alpha.shape
        region = out[top : top + h, left + shift : left + shift + w]
        np.maximum(region, alpha[: region.shape[0], : region.shape[1]], out=region)
    tags = {"gap": gap_kind, "slant": f"{slant:.2f}", "wobble": f"{wobble:.2f}"}
    return out, {**tags, "broken": str(broken)}


def _fit(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink a coverage patch to fit width×height (never enlarges)."""
    scale = min(1.0, width / alpha.shape[1], height / alpha.shape[0])
    if scale >= 1.0:
        return alpha
    size = (max(1, int(alpha.shape[1] * scale)), max(1, int(alpha.shape[0] * scale)))
    return cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)


def paper_row(digits: list[np.ndarray], rng: Rng) -> tuple[np.ndarray, dict[str, str]]:
    """A grey scan (uint8) of the row in felt pen or ballpoint, sometimes underlined or specked."""
    height = rng.uniform(40, 120)
    pen = str(rng.choice(["felt_black", "ballpoint_black", "gel_black", "mnist_shape"]))
    alpha, tags = row_alpha(digits, height, pen, rng)
    margin = round(rng.uniform(0.3, 1.0) * height)
    page = np.pad(alpha, margin)
    underline = rng.random() < 0.2
    if underline:
        y = margin + alpha.shape[0] - round(rng.uniform(0.0, 0.15) * height)
        ends = (margin // 2, page.shape[1] - margin // 2)
        thick = max(1, round(0.04 * height))
        cv2.line(page, (ends[0], y), (ends[1], y), 1.0, thick, cv2.LINE_AA)
    paper, ink = rng.uniform(0.82, 1.0), rng.uniform(0.0, 0.25)
    grey = paper + (ink - paper) * page
    for _ in range(int(rng.poisson(3.0))):  # dust
        centre = (int(rng.integers(page.shape[1])), int(rng.integers(page.shape[0])))
        cv2.circle(grey, centre, max(1, round(0.02 * height)), float(ink), -1)
    grey += rng.normal(0, 0.01, grey.shape).astype(np.float32)
    more = {"pen": pen, "underline": str(underline).lower(), "height": f"{height:.0f}"}
    return render.to_uint8(grey), {**tags, **more}


def canvas_row(digits: list[np.ndarray], rng: Rng) -> tuple[np.ndarray, dict[str, str]]:
    """A wide web-canvas export (uint8 RGBA, 3·280 × 280 or wider): dark brush strokes on a
    transparent or white background."""
    height = CANVAS_HEIGHT * rng.uniform(0.35, 0.6)
    alpha, tags = row_alpha(digits, height, "brush", rng)
    width = max(3 * CANVAS_HEIGHT, alpha.shape[1] + 40)
    alpha = _fit(alpha, width - 20, CANVAS_HEIGHT - 20)
    canvas = np.zeros((CANVAS_HEIGHT, width), np.float32)
    top = int(rng.integers(0, CANVAS_HEIGHT - alpha.shape[0] + 1))
    left = int(rng.integers(0, width - alpha.shape[1] + 1))
    canvas[top : top + alpha.shape[0], left : left + alpha.shape[1]] = alpha
    a8 = render.to_uint8(canvas)
    rgba = np.zeros((*a8.shape, 4), np.uint8)
    white = rng.random() < 0.5
    if white:
        rgba[..., :3] = (255 - a8)[..., None]
        rgba[..., 3] = 255
    else:
        rgba[..., :3] = 17
        rgba[..., 3] = a8
    return rgba, {**tags, "style": "black_on_white" if white else "transparent_black"}


def photo_row(
    digits: list[np.ndarray], bank: render.NoiseBank, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """An upright 1600×1200 phone photo (uint8 RGB) of the row written on paper."""
    width, height = PHOTO_FRAME
    pens = {k: w for k, w in render.PEN_WEIGHTS.items() if k != "pencil"}
    pen = render.choice(rng, pens)
    paper = str(rng.choice(list(render.PAPERS)))
    ruling = render.choice(rng, {"plain": 0.5, "lined": 0.35, "squared": 0.15})
    # the row takes at most 80 % of the frame's width
    digit_h = min(height * rng.uniform(0.08, 0.2), 0.8 * width / (0.95 * len(digits)))
    alpha, tags = row_alpha(digits, digit_h, pen, rng)
    alpha = _fit(alpha, int(0.8 * width), int(0.6 * height))
    scene = render.Scene(pen, paper, ruling, digit_h)
    rgb, more = render.photo_of(alpha, scene, PHOTO_FRAME, bank, rng)
    return rgb, {**tags, **more}
