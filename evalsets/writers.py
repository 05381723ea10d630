"""Other writers' habits (issue 11, failure class 4): tight crops whose strokes touch the image
edge, digits stretched to fill their box (as 16×16 forms store them), and the European 1 with
its flag and base and the crossed 7, drawn onto MNIST test 1s and 7s.

Pure functions of a 28×28 MNIST test digit and a seeded generator.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from evalsets import page, render

Rng = np.random.Generator
MAX_STRETCH = 3.0  # a narrow digit (a 1) is widened at most this much more than it is heightened
INK_LEVEL = 0.7  # share of the strongest coverage that counts as ink for a crop's edges


def tight_crop(img28: np.ndarray, bank: render.NoiseBank, rng: Rng) -> tuple[np.ndarray, dict]:
    """A scan or photo cropped to the ink's bounding box, sometimes cutting into the strokes:
    every side of the image touches a stroke (uint8 RGB)."""
    pens = {"ballpoint_black": 0.2, "gel_black": 0.2, "felt_black": 0.2, "marker_black": 0.1}
    pen = render.choice(rng, {**pens, "pencil": 0.1, "mnist_shape": 0.2})
    digit_h = float(np.exp(rng.uniform(np.log(40), np.log(500))))
    crop = render.digit_crop(img28)
    alpha = render.pen_patch(
        crop, pen, digit_h, angle=rng.uniform(-8, 8), shear=rng.uniform(-0.15, 0.15), rng=rng
    )
    margin = 12
    h, w = alpha.shape[0] + 2 * margin, alpha.shape[1] + 2 * margin
    sheet = render.paper_sheet(h, w, render.PAPERS[str(rng.choice(["white", "cream"]))], bank, rng)
    render.ink_on(sheet, alpha, margin, margin, render.PENS[pen][0])
    photo = rng.random() < 0.35
    rgb = page.shoot(sheet, bank, rng, photo=photo)
    rows = np.flatnonzero((alpha >= INK_LEVEL * alpha.max()).any(axis=1)) + margin
    cols = np.flatnonzero((alpha >= INK_LEVEL * alpha.max()).any(axis=0)) + margin
    box = [rows[0], rows[-1] + 1, cols[0], cols[-1] + 1]
    cut = [str(s) for s in rng.choice(4, size=int(rng.integers(0, 3)), replace=False)]
    for side in cut:  # 0 top, 1 bottom, 2 left, 3 right: cut up to 6 % into the strokes
        i = int(side)
        depth = round(rng.uniform(0.0, 0.06) * (box[1] - box[0] if i < 2 else box[3] - box[2]))
        box[i] += depth if i % 2 == 0 else -depth
    rgb = rgb[box[0] : box[1], box[2] : box[3]]
    polarity = "dark_ink"
    if rng.random() < 0.15:
        rgb, polarity = 255 - rgb, "bright_ink"
    tags = {"pen": pen, "photo": str(photo).lower(), "cut": "+".join(cut) or "none"}
    return np.ascontiguousarray(rgb), {**tags, "polarity": polarity}


def fill_box(
    trace: render.Trace, box_w: float, box_h: float, pen_w: float
) -> tuple[np.ndarray, str]:
    """The trace's points (2N×2) stretched so that the pen's ink fills a box_w×box_h box; a
    narrow digit is widened at most MAX_STRETCH times its vertical scale and then centred.
    Returns the points and "both" or "height" (what the ink fills)."""
    pts = trace.segments.reshape(-1, 2).astype(np.float64)
    lo = pts.min(axis=0)
    span = np.maximum(pts.max(axis=0) - lo, 1e-3)
    sx, sy = (box_w - pen_w) / span[0], (box_h - pen_w) / span[1]
    fill = "both"
    if sx > MAX_STRETCH * sy:
        sx, fill = MAX_STRETCH * sy, "height"
    offset = np.array([pen_w / 2 + (box_w - pen_w - span[0] * sx) / 2, pen_w / 2])
    return (pts - lo) * np.array([sx, sy]) + offset, fill


def stretched_digit(img28: np.ndarray, rng: Rng) -> tuple[np.ndarray, dict[str, str]]:
    """The digit stretched to fill its box: a binary 16×16 form cell enlarged (nearest), a grey
    16×16 cell, or a scanned form box (uint8 grey; ink dark on light unless tagged)."""
    kind = render.choice(rng, {"binary16": 0.35, "grey16": 0.25, "form": 0.4})
    trace = render.trace_digit(render.digit_crop(img28))
    if kind == "form":
        box_h = int(rng.integers(40, 201))
        box_w = int(box_h * rng.uniform(0.6, 1.1))
        pen = box_h * rng.uniform(0.04, 0.12)
        pts, fill = fill_box(trace, box_w, box_h, pen)
        ink = render.stroke_alpha(pts, box_w, box_h, pen)
        paper, dark = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.3)
        grey = paper + (dark - paper) * ink + rng.normal(0, 0.015, ink.shape).astype(np.float32)
        return render.to_uint8(grey), {"kind": kind, "fill": fill, "box": f"{box_w}x{box_h}"}
    big = 128  # drawn at 8× and reduced to the 16×16 cell
    pen = big * rng.uniform(0.12, 0.2)
    pts, fill = fill_box(trace, big, big, pen)
    ink = render.stroke_alpha(pts, big, big, pen)
    cell = cv2.resize(ink, (16, 16), interpolation=cv2.INTER_AREA)
    if kind == "binary16":
        cell = (cell >= 0.5).astype(np.float32)
    factor = int(rng.choice([1, 2, 4, 8, 10] if kind == "binary16" else [1, 2, 4]))
    interp = cv2.INTER_NEAREST if kind == "binary16" or rng.random() < 0.5 else cv2.INTER_LINEAR
    cell = cv2.resize(cell, (16 * factor, 16 * factor), interpolation=interp)
    polarity = "bright_ink" if kind == "grey16" or rng.random() < 0.4 else "dark_ink"
    out = render.to_uint8(cell if polarity == "bright_ink" else 1.0 - cell)
    return out, {"kind": kind, "fill": fill, "side": str(16 * factor), "polarity": polarity}


def _segment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a, b]).astype(np.float32)[None]


def european_strokes(trace: render.Trace, label: int, rng: Rng) -> tuple[render.Trace, str]:
    """The trace with a 1's flag (and often its base serif) or a 7's crossbar added where a
    European writer puts them; other labels come back unchanged ("none")."""
    pts = trace.segments.reshape(-1, 2).astype(np.float64)
    added: list[np.ndarray] = []
    tag = "none"
    if label == 1:
        top, bottom = pts[pts[:, 1].argmin()], pts[pts[:, 1].argmax()]
        length = max(float(np.hypot(*(top - bottom))), 1.0)
        up = (top - bottom) / length
        left = np.array([up[1], -up[0]])
        drop = math.radians(rng.uniform(20, 50))  # the flag's angle below the horizontal
        flag = top + (math.cos(drop) * left - math.sin(drop) * up) * length * rng.uniform(0.2, 0.4)
        added.append(_segment(top, flag))
        tag = "flag"
        if rng.random() < 0.5:
            lhalf, rhalf = length * rng.uniform(0.12, 0.3, 2)
            added.append(_segment(bottom + left * lhalf, bottom - left * rhalf))
            tag = "flag_base"
    elif label == 7:
        y0, span = pts[:, 1].min(), np.ptp(pts[:, 1])
        t = np.linspace(0.0, 1.0, 5)[:, None, None]  # points along every segment
        seg = trace.segments.astype(np.float64)
        dense = (seg[None, :, 0] + t * (seg[None, :, 1] - seg[None, :, 0])).reshape(-1, 2)
        band = dense[(dense[:, 1] > y0 + 0.4 * span) & (dense[:, 1] < y0 + 0.65 * span)]
        if len(band):
            centre = np.median(band, axis=0)
            half, tilt = span * rng.uniform(0.15, 0.28), math.radians(rng.uniform(-8, 8))
            step = half * np.array([math.cos(tilt), math.sin(tilt)])
            added.append(_segment(centre - step, centre + step))
            tag = "cross"
    if not added:
        return trace, tag
    segments = np.concatenate([trace.segments, *added])
    flat = segments.reshape(-1, 2)
    segments = segments - np.minimum(flat.min(axis=0) - 1.0, 0.0)  # keep every point inside
    size = np.ceil(segments.reshape(-1, 2).max(axis=0)) + 2
    return render.Trace(segments, int(size[0]), int(size[1])), tag


def serif_page(
    img28: np.ndarray, label: int, bank: render.NoiseBank, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """The digit (with European strokes for a 1 or a 7) written with a pen on a small page."""
    trace, serif = european_strokes(render.trace_digit(render.digit_crop(img28)), label, rng)
    pen = render.choice(rng, {"ballpoint_blue": 0.3, "ballpoint_black": 0.3, "gel_black": 0.25})
    pen = pen if rng.random() < 0.85 else "felt_black"
    short = int(rng.integers(240, 801))
    h, w = (short, short * 4 // 3) if rng.random() < 0.5 else (short * 4 // 3, short)
    digit_h = short * rng.uniform(0.4, 0.75)
    affine = render.digit_transform(
        trace.width, trace.height, digit_h, rng.uniform(-10, 10), rng.uniform(-0.2, 0.1)
    )
    _, (lo, hi) = render.PENS[pen]
    width = max(1.2, digit_h * rng.uniform(lo, hi))
    alpha = render.pen_alpha(trace, affine, width, pad=int(width) + 3)
    alpha = render.pressure(alpha, rng, low=rng.uniform(0.6, 0.95))
    sheet = render.paper_sheet(h, w, render.PAPERS[str(rng.choice(["white", "cream"]))], bank, rng)
    page.ink_at_random(sheet, alpha[: h - 1, : w - 1], render.PENS[pen][0], rng, spread=0.2)
    photo = rng.random() < 0.5
    tags = {"serif": serif, "pen": pen, "photo": str(photo).lower()}
    return page.shoot(sheet, bank, rng, photo=photo), tags
