"""Two training digits touching, framed as one: what the line reader offers when it fails to cut.

Each model's single-digit score (`Thresholds.single`, `training.detector`) learns from these
against digits, so that `resolve` (which adds the log-probability that a piece is one digit to
each reading) prefers the cut reading of "21" to the whole one read confidently as a 2. Pure
NumPy over uint8 28×28 MNIST images.
"""

from __future__ import annotations

import numpy as np

from recognition.preprocessing import fit_and_center

MAX_OVERLAP = 5  # columns the right digit's ink is moved over the left one's, at most…
MIN_OVERLAP = 0  # …and at least (0: the inks just meet)
MAX_DROP = 3  # rows the right digit sits above or below the left one, at most


def ink_columns(image: np.ndarray) -> np.ndarray:
    """The columns of a 28×28 that hold ink."""
    cols = np.flatnonzero(image.max(axis=0) > 0)
    return image[:, cols[0] : cols[-1] + 1] if cols.size else image


def merged_pair(left: np.ndarray, right: np.ndarray, overlap: int, drop: int) -> np.ndarray:
    """`left` and `right` (uint8 28×28) side by side, the right one's ink `overlap` columns over
    the left one's and `drop` rows lower, framed as MNIST frames one digit ([0, 1] float 28×28)."""
    a, b = ink_columns(left), ink_columns(right)
    overlap = min(overlap, a.shape[1] - 1, b.shape[1] - 1)  # a 1 is a few columns wide
    width = a.shape[1] + b.shape[1] - overlap
    canvas = np.zeros((28 + 2 * MAX_DROP, width), np.uint8)
    canvas[MAX_DROP : MAX_DROP + 28, : a.shape[1]] = a
    top = MAX_DROP + drop
    start = a.shape[1] - overlap
    region = canvas[top : top + 28, start : start + b.shape[1]]
    np.maximum(region, b, out=region)
    return fit_and_center(canvas.astype(np.float32) / 255.0)


def merged_pairs(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` merged pairs (count×28×28 float32 in [0, 1]) of random digits of `images`."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), (count, 2))
    overlaps = rng.integers(MIN_OVERLAP, MAX_OVERLAP + 1, count)
    drops = rng.integers(-MAX_DROP, MAX_DROP + 1, count)
    return np.stack(
        [
            merged_pair(images[i], images[j], int(o), int(d))
            for (i, j), o, d in zip(picks, overlaps, drops, strict=True)
        ]
    ).astype(np.float32)
