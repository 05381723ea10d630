"""The files of the issue-11 sets ("Real handwriting"): paper on a darker surround, inks and
papers, other writers' habits. Each maker turns one MNIST test digit (its label, a seeded
generator and the process's noise tiles) into one file.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from evalsets import inks, page, render, scenes, writers
from evalsets.encode import Item, encode, phone_jpeg

Rng = np.random.Generator
Maker = Callable[[np.ndarray, int, Rng, render.NoiseBank], Item]

# (width, height) of the `desk` photos and how often each appears: 12, 24 and 48–50 MP
DESK_FRAMES = {
    (4000, 3000): 0.3,
    (4032, 3024): 0.15,
    (5712, 4284): 0.1,
    (6000, 4000): 0.25,
    (8000, 6000): 0.12,
    (8160, 6120): 0.08,
}
PORTRAIT = 0.4  # share of upright portrait frames (besides EXIF-rotated ones)


def make_desk(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
    """A 12–50 MP phone JPEG of a card, sticky note or sheet on a desk or against a wall."""
    frames = list(DESK_FRAMES)
    width, height = frames[int(rng.choice(len(frames), p=list(DESK_FRAMES.values())))]
    if rng.random() < PORTRAIT:
        width, height = height, width
    photo, _, tags = scenes.desk_photo(img28, width, height, bank, rng)
    data, more = phone_jpeg(scenes.enlarge(photo, width, height, rng), rng)
    return "jpg", data, {**tags, **more, "frame": f"{width}x{height}"}


def make_pasted(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
    """A photo or scan crop pasted on a square of another grey."""
    square, tags = scenes.pasted_square(img28, bank, rng)
    ext, data, quality = page.save(square, rng, jpeg_share=0.5)
    return ext, data, {**tags, "quality": quality}


def _page_maker(scene: Callable[[np.ndarray, render.NoiseBank, Rng], tuple]) -> Maker:
    """A maker that photographs (70 %, mostly JPEG) or scans (mostly PNG) the page `scene`
    draws."""

    def make(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
        sheet, tags = scene(img28, bank, rng)
        photo = rng.random() < 0.7
        rgb = page.shoot(sheet, bank, rng, photo=photo)
        ext, data, quality = page.save(rgb, rng, jpeg_share=0.9 if photo else 0.3)
        return ext, data, {**tags, "photo": str(photo).lower(), "quality": quality}

    make.__doc__ = scene.__doc__
    return make


def make_tight(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
    """A crop whose strokes touch every side of the image."""
    rgb, tags = writers.tight_crop(img28, bank, rng)
    ext, data, quality = page.save(rgb, rng, jpeg_share=0.4)
    return ext, data, {**tags, "quality": quality}


def make_stretched(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
    """The digit stretched to fill its box (16×16 form cells, form boxes), a grey PNG."""
    grey, tags = writers.stretched_digit(img28, rng)
    img = Image.fromarray(grey)
    if tags["kind"] == "binary16" and rng.random() < 0.3:
        img = img.convert("1", dither=Image.Dither.NONE)
        tags = {**tags, "mode": "1"}
    return "png", encode(img, "PNG"), tags


def make_serif(img28: np.ndarray, label: int, rng: Rng, bank: render.NoiseBank) -> Item:
    """A European 1 (flag, base) or crossed 7, or another digit, on a small page."""
    rgb, tags = writers.serif_page(img28, label, bank, rng)
    ext, data, quality = page.save(rgb, rng)
    return ext, data, {**tags, "quality": quality}


REAL_MAKERS: dict[str, Maker] = {
    "desk": make_desk,
    "pasted": make_pasted,
    "marker": _page_maker(inks.marker_page),
    "texture": _page_maker(inks.texture_page),
    "tight": make_tight,
    "stretched": make_stretched,
    "serif": make_serif,
    "pens": _page_maker(inks.pens_page),
}
# `serif` draws its strokes on MNIST test 1s and 7s: the share of each among its files
SERIF_MIX = {1: 0.45, 7: 0.4}
