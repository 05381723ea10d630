"""Tight crops, stretched digits and European strokes: what each claims."""

from __future__ import annotations

import numpy as np
import pytest

from evalsets import render, writers
from tests.evalsets.issue11 import BANK, digits, ink_mask

pytestmark = pytest.mark.unit


def test_tight_crops_have_strokes_touching_every_side() -> None:
    for img28, rng in digits(12):
        rgb, tags = writers.tight_crop(img28, BANK, rng)
        ink = ink_mask(rgb.mean(axis=2), tags["polarity"])
        assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any(), tags


def test_stretched_ink_fills_its_box() -> None:
    kinds = set()
    for img28, rng in digits(20):
        grey, tags = writers.stretched_digit(img28, rng)
        kinds.add(tags["kind"])
        ink = ink_mask(grey, tags.get("polarity", "dark_ink"))
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        h, w = grey.shape
        assert rows[-1] - rows[0] + 1 >= 0.85 * h, tags
        if tags["fill"] == "both":
            assert cols[-1] - cols[0] + 1 >= 0.85 * w, tags
        if tags["kind"] == "binary16":
            assert set(np.unique(grey)) <= {0, 255}
    assert kinds == {"binary16", "grey16", "form"}


def test_a_narrow_one_is_widened_at_most_max_stretch() -> None:
    segments = np.array([[[5.0, 1.0], [5.5, 20.0]]], np.float32)
    pts, fill = writers.fill_box(render.Trace(segments, 8, 22), 100, 100, 10)
    assert fill == "height"
    assert np.ptp(pts[:, 1]) == pytest.approx(90)
    assert np.ptp(pts[:, 0]) < 10


def one_and_seven() -> tuple[render.Trace, render.Trace]:
    stem = np.array([[[10.0, 2.0], [10.0, 22.0]]], np.float32)
    seven = np.array([[[3.0, 2.0], [16.0, 2.0]], [[16.0, 2.0], [8.0, 22.0]]], np.float32)
    return render.Trace(stem, 20, 24), render.Trace(seven, 20, 24)


def test_european_one_gets_a_flag_to_the_left_and_maybe_a_base() -> None:
    one, _ = one_and_seven()
    tags = set()
    for seed in range(10):
        trace, tag = writers.european_strokes(one, 1, np.random.default_rng(seed))
        tags.add(tag)
        flag = trace.segments[1] - (trace.segments[0, 0] - one.segments[0, 0])
        assert flag[1, 0] < flag[0, 0] and flag[1, 1] > flag[0, 1]  # down and to the left
        assert len(trace.segments) == (3 if tag == "flag_base" else 2)
        assert trace.segments.reshape(-1, 2).min() >= 0
    assert tags == {"flag", "flag_base"}


def test_crossed_seven_bar_crosses_the_stem_at_mid_height() -> None:
    _, seven = one_and_seven()
    trace, tag = writers.european_strokes(seven, 7, np.random.default_rng(0))
    assert tag == "cross"
    bar = trace.segments[-1]
    assert 9 < bar[:, 1].mean() < 17
    assert bar[0, 0] < 12 < bar[1, 0]
    same, tag = writers.european_strokes(seven, 3, np.random.default_rng(0))
    assert tag == "none" and same is seven
