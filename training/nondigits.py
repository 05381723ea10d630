"""Generated non-digits (letters, symbols, shapes, scribbles, textures, noise), framed like input.

Each image is drawn on a white canvas and sent through the serving pipeline's own
`extract_digit` and `fit_and_center`, so it reaches the model exactly as a drawing would. Three
disjoint families: "train" (also used, with other seeds, as the validation non-digits that the
abstention thresholds are fitted on); "dev", drawn with other letters, symbols, shapes, fonts
and pens again, on which design choices of the detector are compared (never fitted on); and
"heldout", with yet others, kept out of training, fitting and choosing, for the final report.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recognition.constants import IMAGE_SIZE
from recognition.preprocessing import ImageError, extract_digit, fit_and_center

log = logging.getLogger(__name__)

CANVAS = 112  # side of the drawing before framing
CACHE_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "nondigits"  # gitignored
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
Drawer = Callable[[np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Family:
    """What one family of non-digits is drawn from."""

    letters: str
    hershey: tuple[int, ...]
    fonts: tuple[str, ...]
    pens: tuple[int, int]  # stroke thickness range on the canvas, in pixels
    shapes: tuple[str, ...]


FAMILIES = {
    "train": Family(
        letters="ACEFHKMNPRTUVWXY#%&@+=*",
        hershey=(cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX),
        fonts=("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf"),
        pens=(3, 7),
        shapes=("scribble", "hatch", "noise", "blobs", "box"),
    ),
    "dev": Family(
        letters="afhnrtvxy?$<>~^",
        hershey=(cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_COMPLEX),
        fonts=("DejaVuSans-Oblique.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansCondensed-Bold.ttf"),
        pens=(2, 13),
        shapes=("spiral", "zigzag", "wave", "dots"),
    ),
    "heldout": Family(
        letters="ΔΞΠΣΦΨΩkmwΛ§¶€",
        hershey=(cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX),
        fonts=("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf"),
        pens=(8, 11),
        shapes=("star", "arrow", "grid", "speckle"),
    ),
}


def _canvas() -> np.ndarray:
    return np.full((CANVAS, CANVAS), 255, np.uint8)


def hershey_glyph(char: str, font: int, pen: int, rng: np.random.Generator) -> np.ndarray:
    """One ASCII character in an OpenCV Hershey font, dark on white."""
    img = _canvas()
    scale = rng.uniform(2.2, 3.2)
    (w, h), _ = cv2.getTextSize(char, font, scale, pen)
    origin = ((CANVAS - w) // 2, (CANVAS + h) // 2)
    cv2.putText(img, char, origin, font, scale, 0, pen, cv2.LINE_AA)
    return img


def font_glyph(char: str, font: str, pen: int, rng: np.random.Generator) -> np.ndarray:
    """One character in a DejaVu TrueType font (pen = extra stroke width), dark on white."""
    image = Image.new("L", (CANVAS, CANVAS), 255)
    face = ImageFont.truetype(str(FONT_DIR / font), int(rng.integers(60, 90)))
    ImageDraw.Draw(image).text(
        (CANVAS / 2, CANVAS / 2), char, font=face, fill=0, anchor="mm", stroke_width=pen // 4
    )
    return np.asarray(image.rotate(rng.uniform(-20, 20), fillcolor=255)).copy()


def _points(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(12, CANVAS - 12, size=(count, 2)).astype(np.int32)


def shape(kind: str, pen: int, rng: np.random.Generator) -> np.ndarray:
    """A non-letter drawing of the given kind, dark on white."""
    img = _canvas()
    if kind == "scribble":
        cv2.polylines(img, [_points(rng, int(rng.integers(9, 16)))], False, 0, pen, cv2.LINE_AA)
    elif kind == "hatch":
        for x in range(10, CANVAS - 10, int(rng.integers(10, 18))):
            cv2.line(img, (x, 10), (x + 20, CANVAS - 10), 0, pen)
            cv2.line(img, (10, x), (CANVAS - 10, x - 15), 0, pen)
    elif kind == "noise":
        img = rng.integers(0, 256, size=(CANVAS, CANVAS)).astype(np.uint8)
    elif kind == "blobs":
        for x, y in _points(rng, int(rng.integers(4, 10))):
            cv2.circle(img, (int(x), int(y)), int(rng.integers(3, 9)), 0, -1)
    elif kind == "box":  # a filled block, never so thin that it reads as a "1" or a dash
        half = rng.integers(18, 45, size=2)
        half[1] = int(np.clip(half[1], half[0] // 2 + 1, 2 * half[0]))
        c = CANVAS // 2
        cv2.rectangle(img, (c - half[0], c - half[1]), (c + half[0], c + half[1]), 0, -1)
    elif kind == "speckle":
        img = np.where(rng.random((CANVAS, CANVAS)) < 0.15, 0, 255).astype(np.uint8)
    elif kind == "grid":
        step = int(rng.integers(14, 24))
        for v in range(8, CANVAS - 8, step):
            cv2.line(img, (v, 8), (v, CANVAS - 8), 0, pen)
            cv2.line(img, (8, v), (CANVAS - 8, v), 0, pen)
    else:
        img = _figure(img, kind, pen, rng)
    return img


def _figure(img: np.ndarray, kind: str, pen: int, rng: np.random.Generator) -> np.ndarray:
    """A spiral, zigzag or wave; a row of dots; else a star or an arrow."""
    if kind in ("spiral", "zigzag", "wave"):
        cv2.polylines(img, [_curve(kind, rng)], False, 0, pen, cv2.LINE_AA)
        return img
    if kind == "dots":  # a row of 3–6 round dots, like an ellipsis drawn large
        count, radius = int(rng.integers(3, 7)), int(rng.integers(4, 9))
        y = int(rng.integers(30, CANVAS - 30))
        for x in np.linspace(14, CANVAS - 14, count):
            cv2.circle(img, (int(x), y), radius, 0, -1)
        return img
    return _polygon(img, kind, pen, rng)


def _curve(kind: str, rng: np.random.Generator) -> np.ndarray:
    """The points of a spiral (2–3 turns), a zigzag (4–7 legs) or a wave (2–3 periods)."""
    centre, t = CANVAS / 2, np.linspace(0, 1, 200)
    if kind == "spiral":
        turns = rng.uniform(2, 3) * 2 * np.pi * t + rng.uniform(0, 2 * np.pi)
        radius = 6 + 40 * t
        pts = np.stack([centre + radius * np.cos(turns), centre + radius * np.sin(turns)], axis=1)
    elif kind == "zigzag":
        legs = int(rng.integers(4, 8))
        xs = np.linspace(12, CANVAS - 12, legs + 1)
        ys = np.where(np.arange(legs + 1) % 2 == 0, 25, CANVAS - 25) + rng.uniform(-8, 8, legs + 1)
        pts = np.stack([xs, ys], axis=1)
    else:
        periods = rng.uniform(2, 3)
        xs = 10 + (CANVAS - 20) * t
        pts = np.stack([xs, centre + 22 * np.sin(2 * np.pi * periods * t)], axis=1)
    return pts.astype(np.int32)


def _polygon(img: np.ndarray, kind: str, pen: int, rng: np.random.Generator) -> np.ndarray:
    """A star (five points) or an arrow, at a random angle."""
    angle = rng.uniform(0, 2 * np.pi)
    if kind == "star":
        radii = np.tile([45.0, 18.0], 5)
        turns = angle + np.arange(10) * np.pi / 5
    else:  # arrow: tip, the two barbs, back to the tip, the tail
        radii = np.array([45.0, 25.0, 45.0, 25.0, 45.0, 45.0])
        turns = angle + np.array([0.0, 0.6, 0.0, -0.6, 0.0, np.pi])
        centre = CANVAS / 2
        pts = np.stack([centre + radii * np.cos(turns), centre + radii * np.sin(turns)], axis=1)
        cv2.polylines(img, [pts.astype(np.int32)], False, 0, pen, cv2.LINE_AA)
        return img
    centre = CANVAS / 2
    pts = np.stack([centre + radii * np.cos(turns), centre + radii * np.sin(turns)], axis=1)
    cv2.polylines(img, [pts.astype(np.int32)], True, 0, pen, cv2.LINE_AA)
    return img


def draw(family: Family, rng: np.random.Generator) -> np.ndarray:
    """One random drawing of a family: a glyph two times in three, else a shape."""
    pen = int(rng.integers(family.pens[0], family.pens[1] + 1))
    if rng.random() < 1 / 3:
        return shape(str(rng.choice(family.shapes)), pen, rng)
    char = str(rng.choice(list(family.letters)))
    if char.isascii() and rng.random() < 0.5:
        return hershey_glyph(char, int(rng.choice(family.hershey)), pen, rng)
    return font_glyph(char, str(rng.choice(family.fonts)), pen, rng)


def frame(drawing: np.ndarray) -> np.ndarray | None:
    """The 28×28 model input the serving pipeline makes of a drawing, None if it is rejected."""
    try:
        return fit_and_center(extract_digit(drawing.astype(np.float32) / 255.0))
    except ImageError:
        return None


def generate(split: str, count: int, seed: int) -> np.ndarray:
    """`count` framed non-digits of a family (a key of FAMILIES): float32 N×28×28 in [0, 1]."""
    family, rng = FAMILIES[split], np.random.default_rng(seed)
    out = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    made = 0
    while made < count:
        framed = frame(draw(family, rng))
        if framed is not None:
            out[made] = framed
            made += 1
    return out


def cached(split: str, count: int, seed: int) -> np.ndarray:
    """`generate`, memoised on disk under artifacts/nondigits/ (generation takes ~10 ms each),
    keyed by what the family is drawn from as well, so a changed family is drawn anew."""
    digest = hashlib.sha1(repr(FAMILIES[split]).encode()).hexdigest()[:8]
    path = CACHE_DIR / f"{split}-{count}-{seed}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    images = generate(split, count, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, images)
    return images
