"""Known answers of the line reader on generated rows: counts, order, boxes and refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recognition.limits import MAX_DIGITS
from recognition.preprocessing import ImageError, preprocess
from recognition.segmentation import candidates, read_line, read_unverified, resolve
from tests.helpers import png_bytes

pytestmark = pytest.mark.unit

HEIGHT = 60  # digit height in the generated rows
PAPER, INK = 250, 20


def page(width: int, height: int = 200) -> np.ndarray:
    """A blank white page."""
    return np.full((height, width), PAPER, np.uint8)


def bar(img: np.ndarray, x: int, top: int = 70, height: int = HEIGHT) -> None:
    """A "1": one thick vertical stroke."""
    cv2.line(img, (x, top), (x, top + height), INK, 7)


def ring(img: np.ndarray, x: int, top: int = 70, height: int = HEIGHT) -> None:
    """A "0": an ellipse `height` tall and two thirds as wide, left edge at x."""
    centre = (x + height // 3, top + height // 2)
    cv2.ellipse(img, centre, (height // 3, height // 2), 0, 0, 360, INK, 6)


def row(count: int, gap: int = 30) -> np.ndarray:
    """`count` zeros side by side, `gap` pixels apart."""
    img = page(40 + count * (2 * HEIGHT // 3 + gap))
    for i in range(count):
        ring(img, 20 + i * (2 * HEIGHT // 3 + gap))
    return img


def lefts(img: np.ndarray) -> list[int]:
    return [digit.box[0] for digit in read_unverified(png_bytes(img))]


def test_a_row_is_read_left_to_right_with_boxes_in_the_image() -> None:
    img = row(4)
    digits = read_unverified(png_bytes(img))
    assert len(digits) == 4
    xs = [d.box[0] for d in digits]
    assert xs == sorted(xs)
    for i, digit in enumerate(digits):
        x, y, w, h = digit.box
        assert abs(x - (17 + i * 70)) <= 4 and abs(y - 67) <= 4
        assert abs(w - 46) <= 6 and abs(h - 66) <= 6
        assert digit.image.shape == (28, 28)


def test_boxes_are_in_the_uploaded_pixels_of_a_large_image() -> None:
    small = row(3)
    big = cv2.resize(small, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    boxes = [d.box for d in read_unverified(png_bytes(big))]
    near = [d.box for d in read_unverified(png_bytes(small))]
    for b, s in zip(boxes, near, strict=True):
        assert all(abs(v - 4 * u) <= 8 for v, u in zip(b, s, strict=True))


@pytest.mark.parametrize("count", [1, 2, 7])
def test_count_of_separate_digits(count: int) -> None:
    assert len(lefts(row(count))) == count


def test_a_single_digit_is_framed_exactly_as_preprocess_does() -> None:
    img = page(200)
    ring(img, 60)
    cv2.circle(img, (20, 20), 2, INK, -1)  # dust
    data = png_bytes(img)
    (digit,) = read_unverified(data)
    assert np.array_equal(digit.image, preprocess(data))


def test_a_wide_single_digit_is_not_split() -> None:
    img = page(300)
    cv2.ellipse(img, (150, 100), (60, 30), 0, 0, 360, INK, 6)  # a 0 twice as wide as tall
    assert len(lefts(img)) == 1


def test_broken_strokes_of_one_digit_are_merged() -> None:
    img = page(300)
    ring(img, 40)
    # a "5" in three strokes: its cap, its stem and its belly, not touching
    cv2.line(img, (160, 70), (200, 70), INK, 6)
    cv2.line(img, (160, 78), (160, 100), INK, 6)
    cv2.ellipse(img, (175, 112), (20, 16), 0, -120, 150, INK, 6)
    # a dotted 0 farther right
    for angle in range(0, 360, 20):  # dots whose heights overlap, as a pen dots a line
        a = np.radians(angle)
        cv2.circle(img, (int(260 + 18 * np.cos(a)), int(100 + 30 * np.sin(a))), 5, INK, -1)
    assert len(lefts(img)) == 3


def ones(count: int) -> np.ndarray:
    """`count` ones side by side (fewer than three: parallel lines would be ruled paper)."""
    img = page(40 + count * 50)
    for i in range(count):
        bar(img, 40 + i * 50)
    return img


def test_a_wide_canvas_of_ones_is_not_ruled_paper() -> None:
    """Upright strokes as tall as a wide canvas are digits: without across lines (squared
    paper) they are no family of rulings (all the ink was faded out: a 422)."""
    img = page(1400, 280)
    for i in range(8):
        cv2.line(img, (100 + i * 160, 50), (90 + i * 160, 230), INK, 14)
    assert len(lefts(img)) == 8


def test_an_underline_touching_the_digits_is_dropped() -> None:
    img = row(3, gap=40)
    cv2.line(img, (10, 129), (img.shape[1] - 10, 129), INK, 3)  # through the zeros' bottoms
    assert len(lefts(img)) == 3


def small_zeros(count: int) -> np.ndarray:
    """`count` zeros 36 pixels tall (a long row still fits the 512 pixels analysed)."""
    img = page(40 + count * 36, 100)
    for i in range(count):
        ring(img, 20 + i * 36, top=30, height=36)
    return img


def test_more_than_the_limit_of_digits_is_a_422() -> None:
    img = small_zeros(MAX_DIGITS + 1)
    with pytest.raises(ImageError, match=f"at most {MAX_DIGITS}") as caught:
        read_line(png_bytes(img))
    assert caught.value.status == 422


def test_the_limit_itself_is_read() -> None:
    assert len(lefts(small_zeros(MAX_DIGITS))) == MAX_DIGITS


def test_two_lines_are_a_422() -> None:
    img = page(300, 260)
    for x in (40, 110, 180):
        ring(img, x, top=20)
        ring(img, x, top=160)
    with pytest.raises(ImageError, match="more than one line") as caught:
        read_line(png_bytes(img))
    assert caught.value.status == 422


def test_the_classifier_settles_a_maybe_touching_group() -> None:
    img = page(300)
    ring(img, 40)
    ring(img, 78)
    ring(img, 200)  # another digit: a row, so the pair is only "maybe" touching
    slots = read_line(png_bytes(img))
    count = len(candidates(slots))
    assert any(slot.split for slot in slots)
    sure = [1.0] * count  # everything read confidently: whole groups stay whole
    assert len(resolve(slots, sure)) == len(slots)
    unsure_whole = [0.3 if i == 0 else 0.99 for i in range(count)]
    assert len(resolve(slots, unsure_whole)) > len(slots)


def test_a_pair_read_whole_at_99_5_percent_splits_when_its_pieces_read_surer() -> None:
    """Two touching zeros read whole as one digit at 0.995 (the CNN reads many merged pairs
    that surely) are split when each piece reads surer still."""
    img = page(300)
    ring(img, 40)
    ring(img, 78)
    ring(img, 200)
    slots = read_line(png_bytes(img))
    count = len(candidates(slots))
    assert len(resolve(slots, [0.995] + [0.9999] * (count - 1))) == len(slots) + 1
    assert len(resolve(slots, [0.9995] + [0.9999] * (count - 1))) == len(slots)


def test_two_touching_round_digits_split_in_two() -> None:
    """Two touching zeros 0.95 of their height wide each (a group 1.85 heights wide) are two
    pieces, not three (where the cut falls between touching rings is still wrong: the least
    ink is inside a ring, not where they meet)."""
    img = page(360)
    for x in (40, 98):
        cv2.ellipse(img, (x + 29, 100), (29, 30), 0, 0, 360, INK, 6)
    ring(img, 250)
    pair, _ = read_line(png_bytes(img))
    assert len(pair.whole) == 1 and len(pair.split) == 2


def test_boxes_of_a_card_on_a_desk_count_from_the_upload() -> None:
    """A card cut out of a larger frame (isolate_paper): boxes are still in the upload's pixels."""
    frame = np.full((1200, 1600), 200, np.uint8)
    frame[400:800, 600:1000] = PAPER
    cv2.line(frame, (800, 480), (800, 720), INK, 18)
    (x, y, w, h), *others = [digit.box for digit in read_unverified(png_bytes(frame))]
    assert not others
    assert x <= 791 and x + w >= 809 and 460 <= y <= 480 and 720 <= y + h <= 740
