"""Paper on a darker surround: the paper's share of the frame, the pasted square's grey."""

from __future__ import annotations

import numpy as np
import pytest

from evalsets import scenes
from tests.evalsets.issue11 import BANK, digits

pytestmark = pytest.mark.unit


def test_desk_paper_occupies_its_stated_share_of_the_frame() -> None:
    checked = 0
    for img28, rng in digits(12):
        photo, cover, tags = scenes.desk_photo(img28, 4000, 3000, BANK, rng)
        assert photo.shape == (1200, 1600, 3)
        share = float(tags["share"])
        assert scenes.SHARE[0] <= share <= scenes.SHARE[1]
        if tags["cut"] == "true":
            assert cover[0].any() or cover[-1].any() or cover[:, 0].any() or cover[:, -1].any()
            continue
        aspect = scenes.PAPER_KINDS[tags["paper"]][0]
        expected = (share * 1200) ** 2 / aspect
        assert 0.85 < cover.sum() / expected < 1.15
        checked += 1
    assert checked >= 6


def test_desk_surround_is_darker_than_the_paper() -> None:
    for img28, rng in digits(8):
        photo, cover, _ = scenes.desk_photo(img28, 1600, 1200, BANK, rng)
        grey = photo.mean(axis=2)
        paper, around = np.median(grey[cover > 0.99]), np.median(grey[cover < 0.01])
        assert around < paper


def test_enlarge_gives_the_full_frame() -> None:
    photo = np.full((120, 160, 3), 200, np.uint8)
    big = scenes.enlarge(photo, 1600, 1200, np.random.default_rng(0))
    assert big.shape == (1200, 1600, 3)
    assert abs(float(big.mean()) - 200) < 1


def test_pasted_crop_sits_on_a_square_of_its_grey() -> None:
    for img28, rng in digits(10):
        square, tags = scenes.pasted_square(img28, BANK, rng)
        assert square.shape[0] == square.shape[1]
        corners = square[[0, 0, -1, -1], [0, -1, 0, -1]]
        # at least three corners are the square's grey (the crop may cover one)
        assert (np.abs(corners.astype(int) - int(tags["grey"])) <= 1).all(axis=1).sum() >= 3
        assert 0.35 <= float(tags["share"]) <= 0.85
