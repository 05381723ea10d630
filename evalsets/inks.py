"""Inks and papers that break an ink mask into fragments (issue 11, failure classes 2 and 4):
fat felt-tip strokes that bleed, grainy recycled or coloured paper, pencil with lines and text
showing through from the back, and very thin or very thick pens.

Pure functions of a 28×28 MNIST test digit and a seeded generator; each returns the page as
float32 RGB reflectance ready for `evalsets.page.shoot`, and its tags.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from evalsets import page, render

Rng = np.random.Generator
Scene = tuple[np.ndarray, dict[str, str]]

MARKER_COLOURS = {
    "black": (0.07, 0.07, 0.09),
    "blue": (0.10, 0.22, 0.60),
    "red": (0.75, 0.12, 0.14),
    "green": (0.10, 0.45, 0.20),
    "purple": (0.35, 0.15, 0.50),
}
# paper: (RGB tone, fibre texture strength, flecks per megapixel)
TEXTURED = {
    "recycled": ((0.83, 0.81, 0.75), (0.03, 0.07), 400),
    "green": ((0.66, 0.84, 0.60), (0.02, 0.05), 60),
    "blue": ((0.62, 0.76, 0.92), (0.02, 0.05), 60),
    "pink": ((0.95, 0.72, 0.80), (0.02, 0.05), 60),
    "kraft": ((0.72, 0.58, 0.42), (0.03, 0.07), 250),
    "showthrough": ((0.95, 0.95, 0.93), (0.004, 0.015), 20),
}


def page_size(rng: Rng) -> tuple[int, int]:
    """(height, width) of a page photo or scan: 480–1200 px on the short side, 4:3 either way."""
    short = int(rng.integers(480, 1201))
    long = short * 4 // 3
    return (short, long) if rng.random() < 0.6 else (long, short)


def bleed(alpha: np.ndarray, pen_width: float, bank: render.NoiseBank, rng: Rng) -> np.ndarray:
    """Felt-tip ink: a feathered halo that creeps along the paper's fibres, and a drying tip
    whose streaks leave the stroke uneven."""
    h, w = alpha.shape
    spread = cv2.GaussianBlur(alpha, (0, 0), pen_width * rng.uniform(0.08, 0.2))
    fibres = bank.crop(bank.fibre, h, w, rng)
    halo = np.clip(1.6 * spread - 0.35 + 0.25 * fibres, 0.0, 1.0) * rng.uniform(0.35, 0.8)
    ink = np.maximum(alpha, halo.astype(np.float32))
    return render.pressure(ink, rng, low=rng.uniform(0.45, 0.9))


def marker_page(img28: np.ndarray, bank: render.NoiseBank, rng: Rng) -> Scene:
    """A digit written with a fat felt-tip marker (strokes 8–20 % of its height) that bleeds."""
    h, w = page_size(rng)
    digit_h = min(h, w) * rng.uniform(0.3, 0.7)
    pen_w = digit_h * rng.uniform(0.08, 0.20)
    affine = render.digit_transform(
        *_crop_size(img28), digit_h, rng.uniform(-12, 12), rng.uniform(-0.15, 0.15)
    )
    crop = render.digit_crop(img28)
    alpha = render.pen_alpha(render.trace_digit(crop), affine, pen_w, pad=int(pen_w) + 6)
    alpha = bleed(alpha, pen_w, bank, rng)
    colour = str(rng.choice(list(MARKER_COLOURS)))
    paper = str(rng.choice(["white", "bright_white", "cream", "recycled"]))
    sheet = render.paper_sheet(h, w, render.PAPERS[paper], bank, rng)
    page.ink_at_random(sheet, alpha[: h - 1, : w - 1], MARKER_COLOURS[colour], rng)
    tags = {"colour": colour, "paper": paper, "width": f"{pen_w / digit_h:.2f}"}
    return sheet, tags


def _crop_size(img28: np.ndarray) -> tuple[int, int]:
    crop = render.digit_crop(img28)
    return crop.shape[1], crop.shape[0]


def textured_sheet(kind: str, h: int, w: int, bank: render.NoiseBank, rng: Rng) -> np.ndarray:
    """A sheet of grainy or coloured paper: strong fibre texture, blotches and flecks."""
    tone, (lo, hi), flecks = TEXTURED[kind]
    fibre = bank.crop(bank.fibre, h, w, rng)
    coarse = cv2.GaussianBlur(bank.crop(bank.white, h, w, rng)[..., 0], (0, 0), 3.0)
    blotch = bank.crop(bank.blotch, h, w, rng)
    texture = 1.0 + rng.uniform(lo, hi) * fibre + 0.6 * rng.uniform(lo, hi) * coarse
    texture += rng.uniform(0.0, 0.02) * blotch
    sheet = texture[..., None] * np.array(tone, np.float32) * np.float32(rng.uniform(0.95, 1.0))
    render.specks(sheet, int(rng.poisson(flecks * h * w / 1e6)), rng)
    return np.clip(sheet, 0.0, 1.0).astype(np.float32)


def show_through(sheet: np.ndarray, rng: Rng) -> None:
    """Lines and handwriting on the back of the sheet, faint and blurred through it (in place)."""
    h, w = sheet.shape[:2]
    back = np.zeros((h, w), np.float32)
    spacing = h * rng.uniform(0.05, 0.1)
    phase = rng.uniform(0, spacing)
    for y in np.arange(phase, h, spacing):
        cv2.line(back, (0, int(y)), (w, int(y + rng.uniform(-3, 3))), 0.6, max(1, h // 600))
        if rng.random() < 0.7:  # a line of writing standing on the ruling
            _scribble(back, y, spacing * rng.uniform(0.4, 0.7), w, rng)
    back = cv2.GaussianBlur(back, (0, 0), rng.uniform(1.5, 4.0) * h / 800)
    colour = (0.35, 0.38, 0.50) if rng.random() < 0.5 else (0.30, 0.30, 0.32)
    render.ink_on(sheet, back * np.float32(rng.uniform(0.1, 0.3)), 0, 0, colour)


def _scribble(img: np.ndarray, base: float, height: float, width: int, rng: Rng) -> None:
    """A line of cursive-like handwriting: a wavy polyline with loops, in place."""
    x = rng.uniform(0.02, 0.2) * width
    end = rng.uniform(0.5, 0.98) * width
    xs = np.arange(x, end, max(1.0, height / 6))
    wave = np.sin(xs / height * rng.uniform(2.0, 4.0) + rng.uniform(0, 6))
    ys = base - height * (0.5 + 0.5 * wave)
    ys -= height * 0.3 * np.abs(rng.standard_normal(len(xs))) * (rng.random(len(xs)) < 0.1)
    pts = np.stack([xs, ys], 1).round().astype(np.int32)
    thick = max(1, round(height / 12))
    for a, b in itertools.pairwise(pts):
        if rng.random() > 0.08:  # gaps between words
            cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0, thick)


def texture_page(img28: np.ndarray, bank: render.NoiseBank, rng: Rng) -> Scene:
    """A digit on grainy recycled or coloured paper, or in pencil with show-through."""
    weights = {"recycled": 0.25, "green": 0.15, "blue": 0.08, "pink": 0.07, "kraft": 0.15}
    kind = render.choice(rng, {**weights, "showthrough": 0.3})
    h, w = page_size(rng)
    sheet = textured_sheet(kind, h, w, bank, rng)
    if kind == "showthrough":
        show_through(sheet, rng)
        pen = "pencil"
    else:
        pen = render.choice(rng, {"pencil": 0.3, "ballpoint_blue": 0.25, "ballpoint_black": 0.2})
        pen = pen if rng.random() < 0.8 else "felt_black"
    digit_h = min(h, w) * rng.uniform(0.25, 0.6)
    crop = render.digit_crop(img28)
    alpha = render.pen_patch(
        crop, pen, digit_h, angle=rng.uniform(-10, 10), shear=rng.uniform(-0.15, 0.15), rng=rng
    )
    if pen == "pencil":  # pencil on tooth: the grain of the paper shows through the stroke
        alpha = alpha * (0.75 + 0.25 * bank.crop(bank.fibre, *alpha.shape, rng).clip(-1, 1))
    page.ink_at_random(sheet, alpha[: h - 1, : w - 1], render.PENS[pen][0], rng)
    return sheet, {"paper": kind, "pen": pen}


def pens_page(img28: np.ndarray, bank: render.NoiseBank, rng: Rng) -> Scene:
    """A digit written with a very thin (0.8–2 % of its height) or very thick (22–35 %) pen."""
    thin = rng.random() < 0.5
    h, w = page_size(rng)
    digit_h = min(h, w) * rng.uniform(0.35, 0.8)
    share = rng.uniform(0.008, 0.02) if thin else rng.uniform(0.22, 0.35)
    pen_w = max(1.0, digit_h * share)
    affine = render.digit_transform(
        *_crop_size(img28), digit_h, rng.uniform(-10, 10), rng.uniform(-0.15, 0.15)
    )
    crop = render.digit_crop(img28)
    alpha = render.pen_alpha(render.trace_digit(crop), affine, pen_w, pad=int(pen_w) + 3)
    if thin:
        alpha = render.pressure(alpha, rng, low=rng.uniform(0.5, 0.9))
    colour = render.PENS[str(rng.choice(["ballpoint_blue", "ballpoint_black", "gel_black"]))][0]
    paper = str(rng.choice(["white", "bright_white", "cream"]))
    sheet = render.paper_sheet(h, w, render.PAPERS[paper], bank, rng)
    page.ink_at_random(sheet, alpha[: h - 1, : w - 1], colour, rng, spread=0.15)
    return sheet, {"pen": "thin" if thin else "thick", "width": f"{share:.3f}", "paper": paper}
