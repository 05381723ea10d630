"""scikit-learn's digits as 8×8 grey PNGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from evalsets import make, sklearn_digits

pytestmark = pytest.mark.unit


def test_sklearn_digits_are_native_8x8_grey_pngs_in_both_level_ranges() -> None:
    images, labels = make.sklearn_digits()
    assert images.shape == (1797, 8, 8) and images.max() == 16
    assert set(labels.tolist()) == set(range(10))
    seen = {}
    for i in range(40):
        ext, data, tags = sklearn_digits.make_sklearn(images[i], np.random.default_rng(i), 0)
        with Image.open(io.BytesIO(data)) as img:
            assert (ext, img.format, img.mode, img.size) == ("png", "PNG", "L", (8, 8))
            seen[tags["levels"]] = int(np.asarray(img).max())
    assert seen["raw"] == 16 and seen["scaled"] == 255
