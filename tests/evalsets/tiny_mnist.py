"""A tiny MNIST-layout root and evaluation sets generated from it, shared by the set tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from evalsets import make

SCALE = 0.01  # 10 clean, 5 phone, …, 2 desk, 3 of each other issue-11 set, 18 sklearn


def bar_digit(rng: np.random.Generator) -> np.ndarray:
    """A 28×28 uint8 stroke figure, MNIST-like framing (ink bright on black)."""
    img = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(4, 8, size=2)
    img[top : top + 18, left + 6 : left + 10] = 255
    img[top : top + 4, left : left + 14] = 220
    return img


def write_tiny_mnist(root: Path) -> Path:
    """An MNIST-layout root whose test split holds 200 synthetic digits (labels 0..9)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 10), ("t10k", 200)):
        images = np.stack([bar_digit(rng) for _ in range(n)])
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, n) + labels.tobytes()
        )
    return root


def make_sets(mnist: Path, out: Path, *extra: str) -> Path:
    """The sets generated at SCALE from `mnist` into `out` (one process)."""
    make.main(["--data-root", str(mnist), "--out", str(out), "--scale", str(SCALE), *extra])
    return out
