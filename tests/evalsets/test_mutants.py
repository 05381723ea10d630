"""Seeded mutations of image files: reproducible, different from their seeds, header bombs."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from evalsets import bench_inputs, mutants

pytestmark = pytest.mark.unit

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"


def seeds() -> list[bytes]:
    buffer = io.BytesIO()
    Image.fromarray(DIGIT).save(buffer, format="GIF")
    return [bench_inputs.mnist_png(DIGIT), buffer.getvalue()]


def test_mutants_are_reproducible_from_their_number():
    first = list(mutants.mutants(seeds(), 50))
    again = list(mutants.mutants(seeds(), 10, start=40))
    assert first[40:] == again
    assert len({data for _, _, data in first}) > 40  # and mostly distinct


def test_mutants_differ_from_their_seed():
    originals = seeds()
    changed = sum(data not in originals for _, _, data in mutants.mutants(originals, 200))
    assert changed >= 190


def test_png_with_size_declares_a_bomb_with_a_valid_crc():
    data = mutants.png_with_size(seeds()[0], 40000, 40000)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (40000, 40000)
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29]) & 0xFFFFFFFF
    assert len(data) < 1000


def test_gif_with_size_rewrites_the_screen():
    data = mutants.gif_with_size(seeds()[1], 30000, 10)
    assert struct.unpack("<HH", data[6:10]) == (30000, 10)


def test_seed_files_are_the_three_inputs_plus_a_gif_and_a_jpeg():
    inputs = bench_inputs.make_inputs(DIGIT)
    files = mutants.seed_files(inputs)
    formats = [Image.open(io.BytesIO(data)).format for data in files]
    assert formats == ["PNG", "PNG", "GIF", "JPEG", "JPEG"]
    assert files[0] == inputs["mnist_png"]
    assert files[-1] == inputs["phone_jpeg"]
