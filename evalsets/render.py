"""Render MNIST test digits the way people really send them: pen strokes on paper photographed
with a phone, brush strokes on a web canvas, small or blurry scans.

Pure functions of a 28×28 MNIST image and a seeded `numpy.random.Generator`; the set builder
(`evalsets.make`) decides what to render and how to store it.

Colours and images are float32 RGB in [0, 1] (reflectance before the camera, pixel values after).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

Rng = np.random.Generator

# ---------------------------------------------------------------------------------------------
# Digit geometry: the MNIST digit as a soft shape or as a pen trace (its skeleton)
# ---------------------------------------------------------------------------------------------

_UP = 4  # the skeleton is traced at 4× MNIST resolution


def digit_crop(img28: np.ndarray) -> np.ndarray:
    """The MNIST digit's ink in [0, 1], cropped to its bounding box with a 1-pixel margin."""
    ink = img28.astype(np.float32) / (255.0 if img28.dtype == np.uint8 else 1.0)
    rows = np.flatnonzero((ink > 0.05).any(axis=1))
    cols = np.flatnonzero((ink > 0.05).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return np.pad(crop, 1)


def _neighbours(m: np.ndarray) -> list[np.ndarray]:
    """P2…P9 of Zhang–Suen (clockwise from north) for every pixel of a padded 0/1 array."""
    p = np.pad(m, 1)
    h, w = m.shape
    offsets = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))
    return [p[dy : dy + h, dx : dx + w] for dy, dx in offsets]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning of a binary mask to a one-pixel skeleton."""
    m = mask.astype(np.uint8).copy()
    while True:
        changed = False
        for step in (0, 1):
            n = _neighbours(m)
            count = sum(n)
            seq = [*n, n[0]]
            transitions = sum(
                ((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.uint8) for i in range(8)
            )
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c1, c2 = p2 * p4 * p6, p4 * p6 * p8
            else:
                c1, c2 = p2 * p4 * p8, p2 * p6 * p8
            remove = (m == 1) & (count >= 2) & (count <= 6) & (transitions == 1)
            remove &= (c1 == 0) & (c2 == 0)
            if remove.any():
                m[remove] = 0
                changed = True
        if not changed:
            return m.astype(bool)


@dataclass(frozen=True)
class Trace:
    """A pen trace: segment end points (N×2×2, x/y in crop pixels) and the crop's size."""

    segments: np.ndarray
    width: int
    height: int


def open_blobs(mask: np.ndarray, skeleton: np.ndarray) -> np.ndarray:
    """Replace the medial line through ink blobs by a loop around them.

    A loop written with a fat pen (a 9's head, a 6's belly) fills in: MNIST holds it as a blob,
    whose skeleton is a stick. Its writer drew a loop, so where the stroke is far thicker than
    usual the pen follows the blob's outline, one typical half-width inside.
    """
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    half = float(np.median(dist[skeleton])) if skeleton.any() else 0.0
    core = dist > 1.8 * max(half, 1.0)
    if not core.any():
        return skeleton
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(half) + 1,) * 2)
    region = (dist > half) & (cv2.dilate(core.astype(np.uint8), disk) > 0)
    ring = region & ~(cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    return (skeleton & ~region) | ring


def trace_digit(crop: np.ndarray) -> Trace:
    """The digit's centre line as short segments between 8-connected skeleton pixels."""
    big = cv2.resize(crop, None, fx=_UP, fy=_UP, interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    shape = big > 0.35 * float(np.percentile(big[big > 0.05], 95))  # faint strokes count too
    skeleton = open_blobs(shape, thin(shape))
    ys, xs = np.nonzero(skeleton)
    pairs = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < skeleton.shape[0]) & (x2 >= 0) & (x2 < skeleton.shape[1])
        ok[ok] &= skeleton[y2[ok], x2[ok]]
        pairs.append(np.stack([np.stack([xs[ok], ys[ok]], 1), np.stack([x2[ok], y2[ok]], 1)], 1))
    segments = np.concatenate(pairs).astype(np.float32) / _UP
    if segments.size == 0:  # a dot: one zero-length segment
        point = np.array([[xs.mean(), ys.mean()]], np.float32) / _UP
        segments = np.stack([point, point], 1)
    return Trace(segments, crop.shape[1], crop.shape[0])


def digit_transform(
    width: int, height: int, target_height: float, angle_deg: float, shear: float
) -> np.ndarray:
    """2×3 affine map from crop pixels to a patch: scale to target_height, rotate, shear."""
    scale = target_height / height
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    linear = rot @ np.array([[1.0, shear], [0.0, 1.0]]) * scale
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
    mapped = corners @ linear.T
    return np.hstack([linear, (-mapped.min(axis=0))[:, None]])


def _patch_size(width: int, height: int, affine: np.ndarray, pad: int) -> tuple[int, int]:
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64)
    extent = (corners @ affine.T).max(axis=0)
    return math.ceil(extent[0]) + 2 * pad, math.ceil(extent[1]) + 2 * pad


def pen_alpha(trace: Trace, affine: np.ndarray, pen_width: float, pad: int) -> np.ndarray:
    """Coverage in [0, 1] of a round pen of `pen_width` pixels drawn along the trace."""
    w, h = _patch_size(trace.width, trace.height, affine, pad)
    pts = trace.segments.reshape(-1, 2) @ affine[:, :2].T + affine[:, 2] + pad
    return stroke_alpha(pts, w, h, pen_width)


def stroke_alpha(points: np.ndarray, width: int, height: int, pen_width: float) -> np.ndarray:
    """Coverage (height×width) of a round pen along segments given as point pairs (2N×2, x/y in
    the patch's pixels)."""
    sup = 2 if pen_width < 6 else 1  # supersample thin pens for smooth edges
    lines = np.zeros((height * sup, width * sup), np.uint8)
    pts = np.round(points * sup * 16).astype(np.int32).reshape(-1, 2, 2)
    for (x1, y1), (x2, y2) in pts:
        cv2.line(lines, (int(x1), int(y1)), (int(x2), int(y2)), 255, 1, cv2.LINE_8, shift=4)
    dist = cv2.distanceTransform(255 - lines, cv2.DIST_L2, 3)
    alpha = np.clip(pen_width * sup / 2 + 0.5 - dist, 0.0, 1.0)
    if sup > 1:
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)
    return alpha


def soft_alpha(crop: np.ndarray, affine: np.ndarray, level: float, pad: int) -> np.ndarray:
    """Coverage of the MNIST shape itself (felt-pen width), thresholded softly at `level`."""
    w, h = _patch_size(crop.shape[1], crop.shape[0], affine, pad)
    shifted = affine.copy()
    shifted[:, 2] += pad
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    smooth = cv2.GaussianBlur(crop, (0, 0), 0.6)
    big = cv2.warpAffine(smooth, shifted, (w, h), flags=cv2.INTER_CUBIC)
    edge = max(0.04, 1.0 / scale)  # about one output pixel of anti-aliasing
    return np.clip((big - level) / edge + 0.5, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Pens and papers
# ---------------------------------------------------------------------------------------------

# name: (RGB reflectance of fully covered paper, stroke width as a share of the digit height)
PENS: dict[str, tuple[tuple[float, float, float], tuple[float, float]]] = {
    "ballpoint_blue": ((0.16, 0.20, 0.52), (0.025, 0.06)),
    "ballpoint_black": ((0.13, 0.13, 0.16), (0.025, 0.06)),
    "gel_black": ((0.07, 0.07, 0.09), (0.04, 0.08)),
    "pencil": ((0.38, 0.38, 0.40), (0.03, 0.07)),
    "felt_black": ((0.08, 0.08, 0.10), (0.07, 0.12)),
    "marker_black": ((0.06, 0.06, 0.08), (0.10, 0.18)),
    "marker_blue": ((0.10, 0.20, 0.55), (0.10, 0.18)),
    "marker_red": ((0.72, 0.12, 0.12), (0.09, 0.16)),
    "mnist_shape": ((0.09, 0.09, 0.12), (0.0, 0.0)),  # the MNIST strokes as they are
}
PEN_WEIGHTS = {
    "ballpoint_blue": 0.18,
    "ballpoint_black": 0.16,
    "gel_black": 0.12,
    "pencil": 0.12,
    "felt_black": 0.12,
    "marker_black": 0.09,
    "marker_blue": 0.06,
    "marker_red": 0.04,
    "mnist_shape": 0.11,
}

PAPERS: dict[str, tuple[float, float, float]] = {
    "white": (0.95, 0.95, 0.94),
    "bright_white": (0.99, 0.99, 0.99),
    "cream": (0.95, 0.92, 0.82),
    "recycled": (0.84, 0.83, 0.79),
    "sticky_yellow": (0.98, 0.93, 0.56),
}


def choice(rng: Rng, weights: dict[str, float]) -> str:
    """Weighted random key."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


class NoiseBank:
    """Seeded tiles of white and smooth noise; random crops of them are cheap per-image noise."""

    def __init__(self, seed: int, side: int = 2048) -> None:
        rng = np.random.default_rng(seed)
        self.side = side
        # phones denoise colour more than luminance: mostly grey noise, some colour noise
        grey = rng.standard_normal((side, side, 1), dtype=np.float32)
        colour = rng.standard_normal((side, side, 3), dtype=np.float32)
        self.white = 0.9 * grey + 0.45 * colour
        fibre = rng.standard_normal((side, side), dtype=np.float32)
        self.fibre = cv2.GaussianBlur(fibre, (0, 0), 1.2)
        self.fibre /= self.fibre.std()
        coarse = rng.standard_normal((side // 256, side // 256), dtype=np.float32)
        self.blotch = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)

    def crop(self, tile: np.ndarray, height: int, width: int, rng: Rng) -> np.ndarray:
        """A random window of `tile`, wrapping around when the request is larger than it."""
        if height <= self.side and width <= self.side:
            y = int(rng.integers(0, self.side - height + 1))
            x = int(rng.integers(0, self.side - width + 1))
            return tile[y : y + height, x : x + width]
        y, x = int(rng.integers(0, self.side)), int(rng.integers(0, self.side))
        rows = (y + np.arange(height)) % self.side
        cols = (x + np.arange(width)) % self.side
        return tile[rows][:, cols]


def paper_sheet(
    height: int, width: int, tone: tuple[float, float, float], bank: NoiseBank, rng: Rng
) -> np.ndarray:
    """A blank sheet: base tone, slow blotches and fine fibre texture (float32 RGB)."""
    fibre = bank.crop(bank.fibre, height, width, rng)
    blotch = bank.crop(bank.blotch, height, width, rng)
    texture = cv2.addWeighted(fibre, rng.uniform(0.004, 0.02), blotch, rng.uniform(0, 0.01), 1.0)
    base = np.array(tone, np.float32) * np.float32(rng.uniform(0.97, 1.0))
    return cv2.multiply(cv2.merge([texture] * 3), (*base.tolist(), 0.0))


def rule_paper(
    sheet: np.ndarray, kind: str, spacing: float, phase: float, rng: Rng
) -> tuple[np.ndarray, float]:
    """Draw ruled lines (`lined`) or a grid (`squared`) in place; returns (sheet, first line y)."""
    height, width = sheet.shape[:2]
    colour = (0.55, 0.70, 0.90) if rng.random() < 0.7 else (0.62, 0.62, 0.64)
    strength = rng.uniform(0.35, 0.85)
    thick = max(1, round(rng.uniform(0.0008, 0.002) * height))
    lines = np.zeros((height, width), np.uint8)
    y = phase % spacing
    first = y
    while y < height:
        cv2.line(lines, (0, round(y * 16)), (width * 16, round(y * 16)), 255, thick, cv2.LINE_AA, 4)
        y += spacing
    if kind == "squared":
        x = rng.uniform(0, spacing)
        while x < width:
            cv2.line(lines, (round(x * 16), 0), (round(x * 16), height * 16), 255, thick, 16, 4)
            x += spacing
    alpha = lines.astype(np.float32) / 255.0 * np.float32(strength)
    _apply_colour(sheet, alpha, colour)
    if kind == "lined" and rng.random() < 0.35:  # the red margin
        margin = np.zeros((height, width), np.uint8)
        x = round(rng.uniform(0.05, 0.2) * width)
        cv2.line(margin, (x, 0), (x, height), 255, thick + 1, cv2.LINE_AA)
        _apply_colour(sheet, margin.astype(np.float32) / 255.0 * 0.7, (0.92, 0.45, 0.45))
    return sheet, first


def _apply_colour(img: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float]) -> None:
    """Multiply in a translucent colour (ink absorbs light), in place."""
    tint = cv2.merge([cv2.addWeighted(alpha, c - 1.0, alpha, 0.0, 1.0) for c in colour])
    img[...] = cv2.multiply(img, tint)


def ink_on(
    sheet: np.ndarray,
    alpha: np.ndarray,
    top: int,
    left: int,
    colour: tuple[float, float, float],
) -> None:
    """Put an ink patch (coverage `alpha`) onto the sheet at (top, left), in place."""
    h, w = alpha.shape
    region = sheet[top : top + h, left : left + w]
    _apply_colour(region, alpha[: region.shape[0], : region.shape[1]], colour)


def pressure(alpha: np.ndarray, rng: Rng, low: float) -> np.ndarray:
    """Uneven pen pressure: coverage scaled by a smooth random field in [low, 1]."""
    h, w = alpha.shape
    coarse = rng.uniform(low, 1.0, (max(2, h // 40), max(2, w // 40))).astype(np.float32)
    return alpha * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(low, 1.0)


def graphite(alpha: np.ndarray, rng: Rng) -> np.ndarray:
    """Pencil grain: coverage broken up by paper tooth."""
    grain = rng.uniform(0.5, 1.0, alpha.shape).astype(np.float32)
    return alpha * cv2.GaussianBlur(grain, (0, 0), 0.7)


def specks(sheet: np.ndarray, count: int, rng: Rng) -> None:
    """Dust and dots of ink on the paper, in place."""
    height, width = sheet.shape[:2]
    if count == 0:
        return
    mask = np.zeros((height, width), np.uint8)
    for _ in range(count):
        r = max(1, round(rng.uniform(0.0006, 0.003) * height))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, centre, r, int(rng.uniform(80, 255)), -1, cv2.LINE_AA)
    _apply_colour(sheet, mask.astype(np.float32) / 255.0, (0.2, 0.2, 0.22))


# ---------------------------------------------------------------------------------------------
# Camera: perspective, lighting, optics, sensor, colour, JPEG
# ---------------------------------------------------------------------------------------------


def desk(height: int, width: int, bank: NoiseBank, rng: Rng) -> np.ndarray:
    """A table top behind the sheet: wood, grey, dark or light, with some texture."""
    tones = [(0.42, 0.28, 0.16), (0.30, 0.30, 0.32), (0.10, 0.10, 0.11), (0.75, 0.74, 0.72)]
    tone = np.array(tones[int(rng.integers(len(tones)))], np.float32)
    grain = bank.crop(bank.fibre, height, width, rng)
    streaks = cv2.resize(bank.crop(bank.blotch, 64, 8, rng), (width, height))
    return (1 + 0.05 * grain + 0.15 * streaks)[..., None] * tone


def sheet_corners(height: int, width: int, edge: bool, rng: Rng) -> np.ndarray:
    """Where the sheet's corners land in the photo: tilted, and short of the frame if `edge`.

    Corners run top-left, top-right, bottom-right, bottom-left. Without `edge` every corner lies
    outside the frame, so the sheet fills the photo; with it one or two sides come inside.
    """
    outward = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    size = np.array([width, height], np.float64)
    corners = (outward > 0) * size + outward * rng.uniform(0.0, 0.09, (4, 2)) * size
    if edge:
        # side: (its corners, axis, at the far end of the axis)
        sides = {0: ((0, 3), 0, False), 1: ((0, 1), 1, False), 2: ((1, 2), 0, True)}
        sides[3] = ((2, 3), 1, True)
        for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
            idx, axis, far = sides[int(side)]
            for i in idx:
                inward = rng.uniform(0.03, 0.2) * size[axis]
                corners[i, axis] = size[axis] - inward if far else inward
    return corners.astype(np.float32)


def camera_view(
    height: int, width: int, edge: bool, keep: np.ndarray, rng: Rng, *, tries: int = 20
) -> np.ndarray:
    """Perspective map from the flat sheet to the photo that keeps the points `keep` in view."""
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    for _ in range(tries):
        warp = cv2.getPerspectiveTransform(src, sheet_corners(height, width, edge, rng))
        seen = cv2.perspectiveTransform(keep, warp).reshape(-1, 2)
        inside = (seen >= 0.02 * np.array([width, height])).all()
        if inside and (seen <= 0.98 * np.array([width, height])).all():
            return warp
    return np.eye(3)


def illumination(height: int, width: int, rng: Rng) -> tuple[np.ndarray, str]:
    """Light falling on the scene (RGB gain): exposure, white balance, gradient, vignetting and
    often a soft shadow. Computed at 1/8 resolution: light varies slowly.
    """
    small_h, small_w = max(2, height // 8), max(2, width // 8)
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    xs, ys = (xs + 0.5) / small_w - 0.5, (ys + 0.5) / small_h - 0.5
    a = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.35) * (np.cos(a) * xs + np.sin(a) * ys)
    light *= 1.0 - rng.uniform(0.0, 0.45) * (xs**2 + ys**2) * 2
    tag = "none"
    if rng.random() < 0.55:  # shadow of the phone or the hand: a soft half-plane or blob
        depth = rng.uniform(0.25, 0.6)
        soft = rng.uniform(0.01, 0.08)
        b = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.5:
            dist = np.cos(b) * xs + np.sin(b) * ys - rng.uniform(-0.1, 0.35)
            tag = "edge"
        else:
            cx, cy = 0.6 * np.cos(b), 0.6 * np.sin(b)
            r = rng.uniform(0.3, 0.6)
            dist = r - np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
            tag = "blob"
        light *= 1.0 - depth / (1.0 + np.exp(-dist / soft))
    exposure = rng.uniform(0.8, 1.18)  # above 1 the paper clips to white
    balance = np.array([rng.uniform(0.92, 1.06), 1.0, rng.uniform(0.88, 1.08)], np.float32)
    gain = (light[..., None] * (exposure * balance)).astype(np.float32)
    return cv2.resize(gain, (width, height), interpolation=cv2.INTER_LINEAR), tag


def optics(img: np.ndarray, scale: float, rng: Rng) -> np.ndarray:
    """Defocus or hand-shake blur, in pixels relative to a 1600-pixel-wide frame (`scale`)."""
    if rng.random() < 0.2:
        length = max(3, round(rng.uniform(4, 12) * scale))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        angle = rng.uniform(0, 180)
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    sigma = rng.uniform(0.3, 2.2) * scale
    return cv2.GaussianBlur(img, (0, 0), sigma)


def sensor(img: np.ndarray, bank: NoiseBank, rng: Rng) -> np.ndarray:
    """Sensor noise, tone curve and in-camera sharpening; returns uint8 RGB."""
    h, w = img.shape[:2]
    sigma = rng.uniform(0.004, 0.03)
    noise = bank.crop(bank.white, h, w, rng)
    img = cv2.scaleAdd(noise, sigma, img)
    out = cv2.convertScaleAbs(img, alpha=255.0)  # clips to [0, 255]
    contrast = rng.uniform(0.0, 0.5)  # S-curve, as a lookup table
    levels = np.arange(256, dtype=np.float32) / 255.0
    curve = levels + contrast * levels * (1 - levels) * (levels - 0.5) * 2
    out = cv2.LUT(out, to_uint8(curve))
    if rng.random() < 0.6:
        amount = rng.uniform(0.2, 0.9)
        out = cv2.addWeighted(out, 1 + amount, cv2.GaussianBlur(out, (0, 0), 1.5), -amount, 0)
    return out


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float → uint8 with rounding."""
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


def pen_patch(
    crop: np.ndarray, pen: str, digit_height: float, *, angle: float, shear: float, rng: Rng
) -> np.ndarray:
    """Ink coverage of the digit written with `pen` at the given size and slant."""
    affine = digit_transform(crop.shape[1], crop.shape[0], digit_height, angle, shear)
    _, (lo, hi) = PENS[pen]
    if pen == "mnist_shape":
        return soft_alpha(crop, affine, rng.uniform(0.3, 0.6), pad=4)
    width = max(1.2, digit_height * rng.uniform(lo, hi))
    alpha = pen_alpha(trace_digit(crop), affine, width, pad=int(width) + 3)
    if pen.startswith(("ballpoint", "gel")):
        alpha = pressure(alpha, rng, low=rng.uniform(0.55, 0.9))
    elif pen == "pencil":
        alpha = graphite(pressure(alpha, rng, low=0.6), rng) * rng.uniform(0.7, 1.0)
    return alpha


def _place(size: int, patch: int, rng: Rng, lo: float = 0.12, hi: float = 0.88) -> int:
    """Top-left coordinate putting a patch's centre uniformly in [lo, hi] of the frame."""
    centre = rng.uniform(lo * size, hi * size)
    return int(np.clip(centre - patch / 2, 0, max(0, size - patch)))


def phone_photo(
    img28: np.ndarray, width: int, height: int, bank: NoiseBank, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """An upright phone photo (uint8 RGB, height×width) of the digit written on paper."""
    pen = choice(rng, PEN_WEIGHTS)
    paper = str(rng.choice(list(PAPERS)))
    ruling = choice(rng, {"plain": 0.4, "lined": 0.35, "squared": 0.25})
    short = min(width, height)
    digit_h = short * float(np.exp(rng.uniform(np.log(0.08), np.log(0.32))))
    crop = digit_crop(img28)
    alpha = pen_patch(
        crop, pen, digit_h, angle=rng.uniform(-15, 15), shear=rng.uniform(-0.15, 0.15), rng=rng
    )
    scene = Scene(pen, paper, ruling, digit_h)
    return photo_of(alpha, scene, (width, height), bank, rng)


@dataclass(frozen=True)
class Scene:
    """What a photo shows: the pen, the paper and its ruling, the writing's height in pixels."""

    pen: str
    paper: str
    ruling: str
    digit_h: float


def photo_of(
    alpha: np.ndarray, scene: Scene, frame: tuple[int, int], bank: NoiseBank, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """An upright phone photo (uint8 RGB, `frame` = width×height) of ink coverage `alpha`."""
    width, height = frame
    pen, paper, ruling, digit_h = scene.pen, scene.paper, scene.ruling, scene.digit_h
    short = min(width, height)
    sheet = paper_sheet(height, width, PAPERS[paper], bank, rng)
    top, left = _place(height, alpha.shape[0], rng), _place(width, alpha.shape[1], rng)
    if ruling != "plain":
        per_line = rng.uniform(0.6, 1.5) if ruling == "lined" else rng.uniform(1.5, 4.0)
        spacing = digit_h / per_line
        # the digit stands on a line: its bottom (patch bottom less the pen pad) near a ruling
        base = top + alpha.shape[0] - rng.uniform(0.0, 0.15) * spacing
        rule_paper(sheet, ruling, spacing, phase=base, rng=rng)
    ink_colour, _ = PENS[pen]
    ink_on(sheet, alpha, top, left, ink_colour)
    specks(sheet, int(rng.poisson(2.0)), rng)

    edge = rng.random() < 0.35
    bottom, right = top + alpha.shape[0], left + alpha.shape[1]
    box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
    warp = camera_view(height, width, edge, box.reshape(-1, 1, 2), rng)
    photo = cv2.warpPerspective(sheet, warp, (width, height), flags=cv2.INTER_LINEAR)
    if edge:
        cover = cv2.warpPerspective(np.ones((height, width), np.float32), warp, (width, height))
        photo += (1.0 - cover)[..., None] * desk(height, width, bank, rng)
    light, shadow = illumination(height, width, rng)
    photo = cv2.multiply(photo, light)
    scale = max(width, height) / 1600
    photo = sensor(optics(photo, scale, rng), bank, rng)
    tags = {
        "pen": pen,
        "paper": paper,
        "ruling": ruling,
        "edge": str(edge).lower(),
        "shadow": shadow,
        "size": f"{digit_h / short:.2f}",
    }
    return photo, tags


def canvas_drawing(img28: np.ndarray, size: int, rng: Rng) -> np.ndarray:
    """Brush coverage (size×size, [0, 1]) of the digit drawn with a round brush on a web canvas."""
    digit_h = size * rng.uniform(0.45, 0.9)
    brush = min(rng.uniform(10, 32) * size / 280, 0.25 * digit_h)
    crop = digit_crop(img28)
    affine = digit_transform(
        crop.shape[1], crop.shape[0], digit_h, rng.uniform(-8, 8), rng.uniform(-0.12, 0.12)
    )
    patch = pen_alpha(trace_digit(crop), affine, brush, pad=int(brush) + 2)
    canvas = np.zeros((size, size), np.float32)
    ph, pw = min(patch.shape[0], size), min(patch.shape[1], size)
    top, left = _place(size, ph, rng, 0.3, 0.7), _place(size, pw, rng, 0.3, 0.7)
    canvas[top : top + ph, left : left + pw] = patch[:ph, :pw]
    return canvas


def lowres_digit(img28: np.ndarray, rng: Rng) -> tuple[np.ndarray, dict[str, str]]:
    """The digit reduced to 8–16 pixels and enlarged again (grey uint8, ink bright or dark)."""
    frame = "mnist" if rng.random() < 0.5 else "tight"
    img = img28
    if frame == "tight":  # the digit fills the low-resolution frame, like small datasets
        crop = digit_crop(img28)
        side = max(crop.shape) + 2
        square = np.zeros((side, side), np.float32)
        y, x = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
        square[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        img = to_uint8(square)
    low = int(rng.integers(8, 17))
    small = cv2.resize(img, (low, low), interpolation=cv2.INTER_AREA)
    out = int(rng.choice([28, 32, 56, 64, 100, 128]))
    interp = str(rng.choice(["nearest", "linear", "cubic"]))
    flags = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
    big = cv2.resize(small, (out, out), interpolation=flags[interp])
    polarity = "dark_ink" if rng.random() < 0.5 else "bright_ink"
    if polarity == "dark_ink":
        big = 255 - big
    return big, {"frame": frame, "low": str(low), "interp": interp, "polarity": polarity}


def scan_digit(img28: np.ndarray, side: int, rng: Rng) -> tuple[np.ndarray, str]:
    """A clean scan-like grey image (side×side uint8) of the digit; returns it and its polarity."""
    crop = digit_crop(img28)
    digit_h = side * rng.uniform(0.45, 0.8)
    affine = digit_transform(crop.shape[1], crop.shape[0], digit_h, rng.uniform(-5, 5), 0.0)
    alpha = soft_alpha(crop, affine, rng.uniform(0.35, 0.55), pad=2)
    canvas = np.zeros((side, side), np.float32)
    ph, pw = min(alpha.shape[0], side), min(alpha.shape[1], side)
    top, left = _place(side, ph, rng, 0.35, 0.65), _place(side, pw, rng, 0.35, 0.65)
    canvas[top : top + ph, left : left + pw] = alpha[:ph, :pw]
    paper, ink = rng.uniform(0.82, 1.0), rng.uniform(0.0, 0.25)
    grey = paper + (ink - paper) * canvas
    grey += rng.normal(0, 0.01, grey.shape).astype(np.float32)
    polarity = "dark_ink"
    if rng.random() < 0.3:
        grey, polarity = 1.0 - grey, "bright_ink"
    return to_uint8(grey), polarity
