"""A small card in a large photo: the second, closer look (`look`, `zoom_region`; issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.preprocessing import (
    decode_upright,
    extract_digit,
    fit_and_center,
    look,
    preprocess,
)
from recognition.segmentation import read_line
from tests.recognition.synthetic import draw_four, encode, similarity

pytestmark = pytest.mark.unit

FRAME = (4000, 6000)  # rows, columns: a 24 MP photo
CARD = (slice(1800, 2200), slice(2700, 3300))  # a 600×400 card, a tenth of the frame across


def desk_photo(stroke: int = 4) -> bytes:
    """A mid-grey desk holding a white card with a '4' 240 px tall in a thin dark-blue pen
    (under half a pixel wide at the 512-pixel work size), as a 6000×4000 JPEG."""
    rng = np.random.default_rng(0)
    grey = np.full(FRAME, 128.0, np.float32)
    grey[CARD] = 245
    four = draw_four((400, 600), height=0.6, width=stroke, ink=0, paper=255) < 128
    rgb = np.dstack([grey] * 3)
    card = rgb[CARD]
    card[four] = (30, 40, 140)
    rgb += rng.normal(0, 3, rgb.shape).astype(np.float32)
    return encode(np.clip(rgb, 0, 255).astype(np.uint8), "JPEG", quality=90)


def first_look(data: bytes) -> np.ndarray:
    """The 28×28 from the 512-pixel work image alone, as before the zoom."""
    return fit_and_center(extract_digit(decode_upright(data)[0]))


def ink_share_in_centre(image: np.ndarray) -> float:
    """Share of a 28×28's ink inside its central 20×20: a digit's, not a frame's."""
    return float(image[4:24, 4:24].sum() / max(image.sum(), 1e-6))


def test_a_thin_digit_on_a_small_card_is_read_from_a_closer_look(
    reference: np.ndarray,
) -> None:
    """The closer look is taken and reads the '4' (the work image alone read a frame before
    the card was cut out of a flat fill; now both read it)."""
    data = desk_photo()
    after = preprocess(data)
    assert similarity(after, reference) > 0.8
    assert ink_share_in_centre(after) > 0.95
    view = look(data)
    x, y, width, height = view.frame
    assert width < FRAME[1] / 4 and height < FRAME[0] / 4  # a region, decoded finer
    assert x <= CARD[1].start + 300 <= x + width and y <= CARD[0].start + 200 <= y + height


def test_the_number_reader_zooms_the_same_and_boxes_stay_in_upload_pixels() -> None:
    data = desk_photo()
    (slot,) = read_line(data)
    (digit,) = slot.whole
    np.testing.assert_array_equal(digit.image, preprocess(data))
    x, y, width, height = digit.box
    # the '4' is 240 px tall, 0.6 of the card's height, centred on the card
    assert abs((x + width / 2) - 3000) < 40 and abs((y + height / 2) - 2000) < 40
    assert 200 < height < 300


def test_a_digit_filling_a_large_photo_is_not_zoomed() -> None:
    grey = draw_four(FRAME, height=0.6, width=80, ink=30, paper=230)
    data = encode(np.dstack([grey] * 3), "JPEG", quality=90)
    view = look(data)
    assert view.frame == (0, 0, FRAME[1], FRAME[0])
    np.testing.assert_array_equal(preprocess(data), first_look(data))
