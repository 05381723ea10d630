"""Other writers' styles drawn onto digits: each does what it claims, and only that."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.augment import AugmentConfig
from training.styles import (
    INK_LEVEL,
    add_serif,
    apply_styles,
    break_strokes,
    cut_at_edge,
    heavy_pen,
    ink_box,
    stretch_to_box,
)

pytestmark = pytest.mark.unit


def one() -> np.ndarray:
    """A plain upright '1' on a 40×40 canvas: a vertical bar, 3 px wide, rows 8–32."""
    canvas = np.zeros((40, 40), np.float32)
    canvas[8:32, 19:22] = 1.0
    return canvas


def seven() -> np.ndarray:
    """A '7': a top bar and a slanted stem."""
    canvas = np.zeros((40, 40), np.float32)
    cv2.line(canvas, (12, 8), (28, 8), 1.0, 3)
    cv2.line(canvas, (28, 8), (18, 32), 1.0, 3)
    return canvas


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_stretch_widens_a_thin_digit_towards_a_square() -> None:
    top, left, bottom, right = ink_box(stretch_to_box(one(), rng()))
    assert right - left >= 0.5 * (bottom - top)  # 3 px wide before, 24 tall
    assert bottom - top == 24  # the long side is kept


@pytest.mark.parametrize("seed", range(4))
def test_cut_blanks_one_band_at_the_digits_edge(seed: int) -> None:
    before = np.zeros((40, 40), np.float32)
    before[8:32, 8:32] = 1.0  # a 24×24 block: a band is whole rows or columns of it
    after = cut_at_edge(before, rng(seed))
    assert (after <= before).all()
    rows, cols = np.nonzero(before - after)
    band_rows, band_cols = np.unique(rows), np.unique(cols)
    assert band_rows.size == 24 or band_cols.size == 24  # across the whole digit
    assert min(band_rows.size, band_cols.size) <= 3  # 12 % of 24, from one side


def test_a_one_gets_a_flag_at_its_top_left() -> None:
    before = one()
    after = add_serif(before, 1, rng())
    added = (after > INK_LEVEL) & (before <= INK_LEVEL)
    ys, xs = np.nonzero(added)
    assert ys.size > 0
    assert xs.min() < 19  # to the left of the stem…
    assert ys.min() <= 10  # …starting at its top


def test_a_seven_gets_a_crossbar_through_its_stem() -> None:
    before = seven()
    added = (add_serif(before, 7, rng()) > INK_LEVEL) & (before <= INK_LEVEL)
    ys, xs = np.nonzero(added)
    assert 16 <= ys.mean() <= 26  # about halfway down
    assert xs.max() - xs.min() >= 6  # across, not along


@pytest.mark.parametrize("label", [0, 4, -1])
def test_other_labels_and_non_digits_get_no_serif(label: int) -> None:
    assert np.array_equal(add_serif(seven(), label, rng()), seven())


def test_broken_strokes_lose_a_little_ink_and_gain_none() -> None:
    before, after = one(), break_strokes(one(), rng())
    assert (after <= before).all()
    assert 0 < (before - after).sum() <= 3 * 9


def test_a_heavy_pen_makes_strokes_fatter() -> None:
    assert (heavy_pen(one(), rng()) > INK_LEVEL).sum() > 2 * (one() > INK_LEVEL).sum()


def test_off_by_default_and_deterministic_per_seed() -> None:
    batch = np.stack([one(), seven()])
    assert np.array_equal(apply_styles(batch, None, AugmentConfig(), rng()), batch)
    odds = AugmentConfig(p_stretch=0.5, p_cut=0.5, p_serif=1.0, p_gaps=0.5, p_heavy=0.5)
    labels = np.array([1, 7])
    a, b = apply_styles(batch, labels, odds, rng(5)), apply_styles(batch, labels, odds, rng(5))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, batch)
