"""One file of an evaluation set per (set, position): what to render and how to encode it."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from evalsets import render
from evalsets.encode import Item, container_variants, encode, phone_jpeg
from evalsets.items_real import REAL_MAKERS, SERIF_MIX
from evalsets.sklearn_digits import make_sklearn

SET_SIZES = {"clean": 1000, "phone": 500, "canvas": 600, "lowres": 800, "containers": 600}
# issue 11 "Real handwriting" (appended: the ids, and so the seeds, of the sets above stay)
SET_SIZES |= {"desk": 200, "pasted": 300, "marker": 300, "texture": 300, "tight": 300}
SET_SIZES |= {"stretched": 300, "serif": 300, "pens": 300, "sklearn": 1797}
SET_IDS = {name: i for i, name in enumerate(SET_SIZES)}
BIG_PHOTOS = 6  # 6000×4000 photos added to `containers`
# (width, height) of phone photos and how often each appears
PHONE_FRAMES = {(1600, 1200): 0.5, (1200, 1600): 0.3, (2016, 1512): 0.1, (1512, 2016): 0.1}

_BANK: render.NoiseBank | None = None


def _bank(seed: int) -> render.NoiseBank:
    """The process's noise tiles (built once per process, from the run's seed)."""
    global _BANK  # noqa: PLW0603 - one large immutable table per worker process
    if _BANK is None:
        _BANK = render.NoiseBank(seed)
    return _BANK


def make_clean(img28: np.ndarray, rng: np.random.Generator, seed: int) -> Item:
    """The MNIST digit itself as a grey PNG."""
    return "png", encode(Image.fromarray(img28), "PNG"), {}


def make_phone(img28: np.ndarray, rng: np.random.Generator, seed: int) -> Item:
    """A phone photo of the digit written on paper."""
    frames = list(PHONE_FRAMES)
    width, height = frames[int(rng.choice(len(frames), p=list(PHONE_FRAMES.values())))]
    rgb, tags = render.phone_photo(img28, width, height, _bank(seed), rng)
    data, more = phone_jpeg(rgb, rng)
    return "jpg", data, {**tags, **more, "frame": f"{width}x{height}"}


def make_canvas(img28: np.ndarray, rng: np.random.Generator, seed: int) -> Item:
    """A web-canvas export of the digit drawn with a fat brush."""
    alpha = render.canvas_drawing(img28, 280, rng)
    a8 = render.to_uint8(alpha)
    style = render.choice(
        rng,
        {
            "transparent_black": 0.3,
            "transparent_white": 0.15,
            "transparent_colour": 0.1,
            "black_on_white": 0.25,
            "white_on_black": 0.2,
        },
    )
    if style.startswith("transparent"):
        colour = {"transparent_black": (0, 0, 0), "transparent_white": (255, 255, 255)}.get(
            style, tuple(int(c) for c in rng.choice([(30, 80, 220), (220, 30, 30), (20, 140, 60)]))
        )
        rgba = np.zeros((*a8.shape, 4), np.uint8)
        rgba[a8 > 0, :3] = colour  # a canvas stores (0, 0, 0, 0) where nothing was drawn
        rgba[..., 3] = a8
        img = Image.fromarray(rgba, "RGBA")
    else:
        grey = a8 if style == "white_on_black" else 255 - a8
        img = Image.fromarray(np.dstack([grey] * 3))
    return "png", encode(img, "PNG"), {"style": style}


def make_lowres(img28: np.ndarray, rng: np.random.Generator, seed: int) -> Item:
    """The digit at 8–16 pixels, enlarged again."""
    grey, tags = render.lowres_digit(img28, rng)
    return "png", encode(Image.fromarray(grey), "PNG"), tags


def make_container(img28: np.ndarray, rng: np.random.Generator, seed: int, variant: str) -> Item:
    """A clean scan stored in one container variant (or a 6000×4000 phone photo)."""
    if variant == "photo_6000x4000":
        # rendered at half size and enlarged: a 24 MP phone JPEG holds about that much detail
        rgb, tags = render.phone_photo(img28, 3000, 2000, _bank(seed), rng)
        rgb = cv2.resize(rgb, (6000, 4000), interpolation=cv2.INTER_CUBIC)
        data, more = phone_jpeg(rgb, rng)
        return "jpg", data, {"variant": variant, **tags, **more}
    side = int(np.exp(rng.uniform(np.log(40), np.log(900))))
    grey, polarity = render.scan_digit(img28, side, rng)
    ext, data, tags = container_variants()[variant](grey, rng)
    return ext, data, {"variant": variant, "polarity": polarity, "side": str(side), **tags}


MAKERS: dict[str, Callable[..., Item]] = {
    "clean": make_clean,
    "phone": make_phone,
    "canvas": make_canvas,
    "lowres": make_lowres,
    "sklearn": make_sklearn,
}


def plan(
    name: str, count: int, seed: int, available: int = 10_000, labels: np.ndarray | None = None
) -> list[tuple[int, str]]:
    """(source index, container variant or "") for each file of a set, seeded; `available` is
    the number of source images (10 000 MNIST test images); `serif` needs their `labels`."""
    rng = np.random.default_rng([seed, SET_IDS[name]])
    if name == "serif":
        return [(i, "") for i in _serif_picks(count, rng, labels)]
    if name != "containers":
        picks = rng.choice(available, size=min(count, available), replace=False)
        return [(int(i), "") for i in picks]
    variants = list(container_variants())
    per_variant = max(1, count // len(variants))
    names = [v for v in variants for _ in range(per_variant)]
    names += ["photo_6000x4000"] * max(1, round(BIG_PHOTOS * count / SET_SIZES["containers"]))
    indices = rng.choice(available, size=len(names), replace=len(names) > available)
    return [(int(i), v) for i, v in zip(indices, names, strict=True)]


def _serif_picks(count: int, rng: np.random.Generator, labels: np.ndarray | None) -> list[int]:
    """Test indices for `serif`: SERIF_MIX's shares of 1s and 7s, the rest other digits."""
    if labels is None:
        raise ValueError("plan('serif', ...) needs the labels")
    groups = {d: np.flatnonzero(labels == d) for d in SERIF_MIX}
    others = np.flatnonzero(~np.isin(labels, list(SERIF_MIX)))
    picks = []
    for digit, share in SERIF_MIX.items():
        n = min(round(count * share), len(groups[digit]))
        picks += rng.choice(groups[digit], size=n, replace=False).tolist()
    rest = min(count - len(picks), len(others))
    picks += rng.choice(others, size=max(rest, 0), replace=False).tolist()
    return [int(i) for i in rng.permutation(picks)]


def make_one(job: tuple[str, int, int, str, np.ndarray, int, int]) -> Item:
    """The file of one job: (set, position, source index, variant, image, label, run seed)."""
    name, position, _, variant, image, label, seed = job
    rng = np.random.default_rng([seed, SET_IDS[name], position])
    if name == "containers":
        return make_container(image, rng, seed, variant)
    if name in REAL_MAKERS:
        return REAL_MAKERS[name](image, label, rng, _bank(seed))
    return MAKERS[name](image, rng, seed)
