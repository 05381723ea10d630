"""scikit-learn's bundled digits (`sklearn.datasets.load_digits`, loaded by `evalsets.make`):
1,797 8×8 images by 43 writers, no download. For evaluation only: never used for training,
calibration or model selection.

Each file is the image at its native 8×8 as an 8-bit grey PNG, ink bright on black like
the array: mostly with the levels 0–16 scaled to 0–255 (`levels=scaled`, what a user who
saves the array as a picture sends), and a quarter with the raw levels 0–16 as the 8-bit values
(`levels=raw`, `Image.fromarray(img.astype("uint8"))`: a nearly black image).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalsets.encode import Item, encode

RAW_SHARE = 0.25


def make_sklearn(img8: np.ndarray, rng: np.random.Generator, seed: int) -> Item:
    """One sklearn digit as an 8×8 8-bit grey PNG (scaled or raw levels)."""
    raw = rng.random() < RAW_SHARE
    pixels = img8 if raw else np.round(img8.astype(np.float32) * 255 / 16).astype(np.uint8)
    tags = {"levels": "raw" if raw else "scaled"}
    return "png", encode(Image.fromarray(pixels, "L"), "PNG"), tags
