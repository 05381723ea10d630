"""Shared inputs of the issue-11 set tests: synthetic digits and a noise bank."""

from __future__ import annotations

import numpy as np

from evalsets import render
from tests.evalsets.tiny_mnist import bar_digit

BANK = render.NoiseBank(0, side=512)


def digits(n: int) -> list[tuple[np.ndarray, np.random.Generator]]:
    """`n` synthetic 28×28 digits, each with its own seeded generator."""
    return [(bar_digit(np.random.default_rng(i)), np.random.default_rng([7, i])) for i in range(n)]


def ink_mask(grey: np.ndarray, polarity: str = "dark_ink") -> np.ndarray:
    """Pixels past the midpoint between the image's extremes, on the ink's side."""
    mid = (int(grey.max()) + int(grey.min())) / 2
    return grey < mid if polarity == "dark_ink" else grey > mid
