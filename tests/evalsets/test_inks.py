"""Markers, textured papers and extreme pens: what each page claims."""

from __future__ import annotations

import numpy as np
import pytest

from evalsets import inks, render
from tests.evalsets.issue11 import BANK, digits

pytestmark = pytest.mark.unit


def test_marker_strokes_are_8_to_20_percent_of_the_digit_and_bleed() -> None:
    for img28, rng in digits(6):
        sheet, tags = inks.marker_page(img28, BANK, rng)
        assert 0.08 <= float(tags["width"]) <= 0.20
        assert sheet.dtype == np.float32 and sheet.min() >= 0
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 35:45] = 1.0
    bled = inks.bleed(alpha, 10.0, BANK, np.random.default_rng(0))
    assert ((bled > 0.05) & (alpha == 0)).sum() > 0  # ink beyond the stroke's edge


def test_textured_paper_is_grainier_than_plain_paper() -> None:
    rng = np.random.default_rng(0)
    plain = render.paper_sheet(300, 300, render.PAPERS["white"], BANK, rng)
    for kind in ("recycled", "green", "kraft"):
        grainy = inks.textured_sheet(kind, 300, 300, BANK, rng)
        assert grainy[..., 1].std() > 2 * plain[..., 1].std()


def test_show_through_is_faint() -> None:
    sheet = np.ones((400, 300, 3), np.float32)
    inks.show_through(sheet, np.random.default_rng(1))
    assert sheet.min() > 0.6 and sheet.min() < 0.99


def test_texture_and_pens_tags() -> None:
    for img28, rng in digits(8):
        _, tags = inks.texture_page(img28, BANK, rng)
        assert tags["paper"] in inks.TEXTURED
        assert tags["pen"] == "pencil" or tags["paper"] != "showthrough"
        _, tags = inks.pens_page(img28, BANK, rng)
        width = float(tags["width"])
        assert 0.008 <= width <= 0.02 if tags["pen"] == "thin" else 0.22 <= width <= 0.35
