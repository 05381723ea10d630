"""Merged pairs: two training digits touching, framed as MNIST frames one digit."""

from __future__ import annotations

import numpy as np
import pytest

from training.pairs import ink_columns, merged_pair, merged_pairs

pytestmark = pytest.mark.unit


def bar(width: int) -> np.ndarray:
    """A 28×28 uint8 upright stroke `width` columns wide."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12 : 12 + width] = 255
    return image


def test_a_pair_is_framed_wider_than_tall_like_a_two_digit_group() -> None:
    pair = merged_pair(bar(12), bar(12), overlap=0, drop=0)
    assert pair.shape == (28, 28) and pair.dtype == np.float32
    assert pair.min() >= 0.0 and pair.max() <= 1.0
    rows, cols = np.flatnonzero(pair.max(axis=1) > 0.5), np.flatnonzero(pair.max(axis=0) > 0.5)
    assert cols.size >= 19 and rows.size <= 18  # 24 columns by 20 rows, fitted in 20×20


def test_overlap_moves_the_right_digit_over_the_left_one() -> None:
    apart = merged_pair(bar(6), bar(6), overlap=0, drop=0)
    over = merged_pair(bar(6), bar(6), overlap=3, drop=0)
    assert (over > 0.5).sum() < (apart > 0.5).sum()  # 9 columns fill the box less than 12


def test_a_one_narrower_than_the_overlap_still_pairs() -> None:
    assert ink_columns(bar(2)).shape == (28, 2)
    assert merged_pair(bar(2), bar(8), overlap=5, drop=3).max() > 0.5


def test_pairs_are_reproducible_per_seed() -> None:
    images = np.stack([bar(w) for w in range(2, 12)])
    first, again = merged_pairs(images, 6, seed=3), merged_pairs(images, 6, seed=3)
    assert first.shape == (6, 28, 28)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, merged_pairs(images, 6, seed=4))
