"""The `numbers` evaluation set: rows of 2–10 MNIST test digits, one file per row.

Each row is rendered as a paper scan (PNG), a wide web canvas (PNG) or a phone photo (JPEG,
often stored sideways with an EXIF orientation), in equal shares; its label is the number as a
string ("042"). Every row has its own seed derived from (--seed, position).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalsets import rows
from evalsets.encode import Item, encode, phone_jpeg
from evalsets.items import _bank

NUMBER_SIZES = {"numbers": 900}
LENGTHS = range(2, 11)  # digits per row
RENDERINGS = ("paper", "canvas", "photo")
SET_ID = 100  # seed stream of the set (the digit sets use 0–4)


def plan_numbers(count: int, seed: int, available: int = 10_000) -> list[tuple[int, ...]]:
    """The MNIST test indices of each row: lengths cycle through 2–10, digits drawn at random."""
    rng = np.random.default_rng([seed, SET_ID])
    lengths = [LENGTHS[i % len(LENGTHS)] for i in range(count)]
    return [tuple(int(i) for i in rng.choice(available, size=n)) for n in lengths]


def make_number(job: tuple[int, list[np.ndarray], int]) -> Item:
    """The file of one row: (position, its 28×28 digits, run seed)."""
    position, digits, seed = job
    rng = np.random.default_rng([seed, SET_ID, position])
    rendering = RENDERINGS[position % len(RENDERINGS)]
    if rendering == "paper":
        grey, tags = rows.paper_row(digits, rng)
        return "png", encode(Image.fromarray(grey), "PNG"), {"render": rendering, **tags}
    if rendering == "canvas":
        rgba, tags = rows.canvas_row(digits, rng)
        return "png", encode(Image.fromarray(rgba, "RGBA"), "PNG"), {"render": rendering, **tags}
    rgb, tags = rows.photo_row(digits, _bank(seed), rng)
    data, more = phone_jpeg(rgb, rng)
    return "jpg", data, {"render": rendering, **tags, **more}
