"""Synthetic digits and photos for the preprocessing tests: a drawn '4', JPEG photos of it."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

# A "4" as polyline strokes in a unit box: (x, y) from the top-left corner.
FOUR = [[(0.55, 0.0), (0.05, 0.65), (0.95, 0.65)], [(0.7, 0.3), (0.7, 1.0)]]


def draw_four(
    shape: tuple[int, int] = (280, 280),
    *,
    height: float = 0.6,
    centre: tuple[float, float] = (0.5, 0.5),
    width: int = 0,
    ink: int = 0,
    paper: int = 255,
) -> np.ndarray:
    """Grey uint8 image of a '4' `height` (share of the shorter side) tall, centred at `centre`
    (shares of width and height), with strokes `width` pixels wide (default: a tenth of it)."""
    rows, cols = shape
    side = height * min(rows, cols)
    img = np.full(shape, paper, np.uint8)
    stroke = width or max(1, round(side / 10))
    left, top = centre[0] * cols - side / 2, centre[1] * rows - side / 2
    for line in FOUR:
        pts = np.array([[left + x * side, top + y * side] for x, y in line], np.float64)
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, ink, stroke, 16, 4)
    return img


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    """Image (Pillow or array) → file bytes."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two model inputs (1 = same picture), best over shifts of one pixel:
    centring by the centre of mass rounds to whole pixels."""
    shifted = (np.roll(a, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return max(float(np.corrcoef(s.ravel(), b.ravel())[0, 1]) for s in shifted)


def photo(grey: np.ndarray, light: np.ndarray, noise: float = 0.01, seed: int = 0) -> bytes:
    """A grey scene under `light` (same shape, gains) with sensor noise, as a JPEG."""
    rng = np.random.default_rng(seed)
    scene = grey.astype(np.float32) / 255.0 * light + rng.normal(0, noise, grey.shape)
    rgb = np.clip(scene * 255 + 0.5, 0, 255).astype(np.uint8)
    return encode(np.dstack([rgb] * 3), "JPEG", quality=88)


def diagonal_shadow(shape: tuple[int, int], shade: float, blur: float) -> np.ndarray:
    """Light gains over `shape`: 1, and `shade` past the diagonal across the lower right, the
    shadow's edge softened by a Gaussian of `blur` pixels (float32)."""
    rows, cols = shape
    ys, xs = np.mgrid[0:rows, 0:cols]
    light = np.where(xs + ys > 0.9 * (rows + cols) / 2, shade, 1.0).astype(np.float32)
    return cv2.GaussianBlur(light, (0, 0), blur)
