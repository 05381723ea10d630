"""The performance benchmark's three inputs: formats, sizes, determinism, real preprocessing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from evalsets import bench_inputs
from recognition.preprocessing import preprocess
from recognition.segmentation import read_line

pytestmark = pytest.mark.unit

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_inputs_have_the_promised_formats_and_sizes():
    inputs = bench_inputs.make_inputs(DIGIT)
    assert list(inputs) == list(bench_inputs.INPUT_NAMES)
    mnist, canvas, phone, number = (decoded(inputs[name]) for name in bench_inputs.INPUT_NAMES)
    assert (mnist.format, mnist.size, mnist.mode) == ("PNG", (28, 28), "L")
    assert (canvas.format, canvas.size, canvas.mode) == ("PNG", (280, 280), "RGBA")
    assert (phone.format, phone.size) == ("JPEG", (1600, 1200))
    assert (number.format, number.size) == ("JPEG", (1600, 1200))


def test_inputs_are_deterministic():
    assert bench_inputs.make_inputs(DIGIT) == bench_inputs.make_inputs(DIGIT)


def test_inputs_go_through_the_real_preprocessing_to_the_same_digit():
    inputs = bench_inputs.make_inputs(DIGIT)
    images = [preprocess(inputs[name]) for name in ("mnist_png", "canvas_png", "phone_jpeg")]
    for image in images:
        assert image.shape == (28, 28)
        # a vertical bar: ink in the middle columns, none at the sides
        assert image[:, 12:16].sum() > 5 * image[:, :8].sum()


def test_the_number_photo_holds_six_digits_on_one_line_inside_the_frame():
    other = np.zeros((28, 28), np.uint8)
    other[6:10, 8:20] = other[18:22, 8:20] = other[6:22, 8:12] = 255  # a "C"-ish shape
    number = [DIGIT, other] * 3
    data = bench_inputs.make_inputs(DIGIT, number)["phone_number_jpeg"]
    slots = read_line(data)
    assert len(slots) == 6
    boxes = [slot.whole[0].box for slot in slots]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert all(x >= 0 and x + w <= 1600 and y + h <= 1200 for x, y, w, h in boxes)
    assert bench_inputs.make_inputs(DIGIT) != bench_inputs.make_inputs(DIGIT, number)
