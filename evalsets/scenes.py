"""Paper on a darker surround (issue 11, failure class 1): a card, sticky note or sheet with the
digit on it, lying on a desk or held against a wall, a small part of a large phone frame; and a
photo or scan crop pasted onto a square of another grey.

A large frame is drawn at WORK_LONG pixels on its long side and enlarged to its real size with
a little sensor noise: a phone's 12–48 MP JPEG holds no more detail than that at this scale.
"""

from __future__ import annotations

import cv2
import numpy as np

from evalsets import page, render

Rng = np.random.Generator
WORK_LONG = 1600
SHARE = (1 / 8, 1 / 3)  # the paper's long side as a share of the frame's short side

# paper: (long side / short side, tones it comes in)
PAPER_KINDS: dict[str, tuple[float, list[tuple[float, float, float]]]] = {
    "card": (1.6, [(0.95, 0.95, 0.94), (0.95, 0.92, 0.84)]),
    "sticky": (1.0, [(0.98, 0.93, 0.56), (0.98, 0.78, 0.85), (0.76, 0.88, 0.98), (0.8, 0.95, 0.7)]),
    "sheet": (1.414, [(0.95, 0.95, 0.94), (0.99, 0.99, 0.99), (0.92, 0.92, 0.90)]),
}
SURROUNDS = {"grey": 0.25, "colour": 0.15, "wood": 0.2, "dark": 0.1, "light": 0.1, "wall": 0.2}
SKIN = (0.80, 0.58, 0.47)


def surround(kind: str, h: int, w: int, bank: render.NoiseBank, rng: Rng) -> np.ndarray:
    """What lies around the paper (float32 RGB): a grey, coloured, wood, dark or light desk, or a
    painted wall."""
    grain = bank.crop(bank.fibre, h, w, rng)
    blotch = bank.crop(bank.blotch, h, w, rng)
    if kind == "wood":  # streaks along the grain, varying across it
        streaks = cv2.resize(bank.crop(bank.fibre, 24, 1024, rng), (w, h))
        streaks = streaks.T if rng.random() < 0.5 else streaks
        streaks = cv2.resize(streaks, (w, h))
        tone = np.array((0.48, 0.32, 0.18)) * rng.uniform(0.6, 1.2)
        texture = 1 + 0.12 * streaks + 0.03 * grain + 0.08 * blotch
    else:
        level = {"grey": (0.25, 0.7), "colour": (0.5, 1.0), "dark": (0.04, 0.15)}.get(
            kind, (0.72, 0.9)
        )
        tone = np.full(3, rng.uniform(*level))
        if kind == "colour":
            hues = [(0.2, 0.3, 0.55), (0.15, 0.4, 0.25), (0.55, 0.18, 0.15), (0.4, 0.4, 0.46)]
            tone *= np.array(hues[int(rng.integers(len(hues)))]) / 0.55
        elif kind == "wall":
            tone *= np.array([1.0, 0.97, 0.9])
        texture = 1 + rng.uniform(0.005, 0.04) * grain + rng.uniform(0.0, 0.05) * blotch
    return (texture[..., None] * tone.astype(np.float32)).astype(np.float32)


def paper_with_digit(
    img28: np.ndarray, long_px: float, bank: render.NoiseBank, rng: Rng
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """The paper (float32 RGB, upright) with the digit written on it, the digit's box on the
    paper (4×2 corners) and tags."""
    kind = str(rng.choice(list(PAPER_KINDS)))
    aspect, tones = PAPER_KINDS[kind]
    long_side, short_side = round(long_px), max(8, round(long_px / aspect))
    h, w = (short_side, long_side) if rng.random() < 0.6 else (long_side, short_side)
    sheet = render.paper_sheet(h, w, tones[int(rng.integers(len(tones)))], bank, rng)
    if kind == "sheet" and rng.random() < 0.4:
        render.rule_paper(sheet, "lined", h * rng.uniform(0.05, 0.09), rng.uniform(0, 50), rng)
    pen = render.choice(rng, {"ballpoint_blue": 0.3, "gel_black": 0.25, "felt_black": 0.25})
    pen = pen if rng.random() < 0.8 else "marker_black"
    digit_h = min(h, w) * rng.uniform(0.4, 0.7)
    alpha = render.pen_patch(
        render.digit_crop(img28), pen, digit_h, angle=rng.uniform(-10, 10), shear=0.0, rng=rng
    )
    alpha = alpha[: h - 2, : w - 2]
    top, left = page.ink_at_random(sheet, alpha, render.PENS[pen][0], rng, spread=0.1)
    bottom, right = top + alpha.shape[0], left + alpha.shape[1]
    box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
    return sheet, box, {"paper": kind, "pen": pen}


def place_paper(
    paper: tuple[int, int], box: np.ndarray, frame: tuple[int, int], cut: bool, rng: Rng
) -> tuple[np.ndarray, bool]:
    """Perspective map of the paper (height, width) into the frame (height, width): turned,
    slightly tilted, and with `cut` part of it out of the frame (never the digit, whose `box`
    on the paper is given). Returns the map and whether a part is cut off."""
    (ph, pw), (fh, fw) = paper, frame
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    for _ in range(30):
        angle = np.radians(rng.uniform(-25, 25))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        corners = (src - [pw / 2, ph / 2]) @ rot.T
        corners += rng.uniform(-0.04, 0.04, (4, 2)) * max(ph, pw)
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        if cut:  # the centre lands where the paper crosses the frame's edge by 10–40 %
            centre = rng.uniform(-0.6 * lo, [fw, fh] - 0.6 * hi)
        else:
            centre = rng.uniform(-lo + 0.02 * fw, [fw, fh] - hi - 0.02 * fw)
        dst = (corners + centre).astype(np.float32)
        warp = cv2.getPerspectiveTransform(src, dst)
        seen = cv2.perspectiveTransform(box.reshape(-1, 1, 2), warp).reshape(-1, 2)
        digit_in = (seen > 0.02 * fw).all() and (seen < [0.98 * fw, 0.98 * fh]).all()
        paper_out = (dst < 0).any() or (dst > [fw, fh]).any()
        if digit_in and paper_out == cut:
            return warp, cut
    centred = src + np.float32([(fw - pw) / 2, (fh - ph) / 2])
    return cv2.getPerspectiveTransform(src, centred), False


def thumb(frame: np.ndarray, cover: np.ndarray, warp: np.ndarray, ph: int, pw: int) -> None:
    """A thumb holding the paper at the middle of its bottom edge (in place, on top)."""
    h, w = cover.shape
    centre = cv2.perspectiveTransform(np.array([[[pw / 2, ph]]], np.float32), warp)[0, 0]
    size = 0.2 * min(ph, pw) * abs(np.linalg.det(warp[:2, :2])) ** 0.5
    mask = np.zeros((h, w), np.float32)
    axes = (max(2, round(size * 0.5)), max(2, round(size)))
    cv2.ellipse(mask, (round(centre[0]), round(centre[1] + size * 0.6)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, size * 0.08))
    frame[...] = frame * (1 - mask[..., None]) + mask[..., None] * np.float32(SKIN)


def desk_photo(
    img28: np.ndarray, width: int, height: int, bank: render.NoiseBank, rng: Rng
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """The scene at working resolution (uint8 RGB, long side WORK_LONG), the paper's coverage
    (float32, 0–1) and tags; `desk_frame` enlarges it to width×height."""
    scale = WORK_LONG / max(width, height)
    fw, fh = round(width * scale), round(height * scale)
    share = float(rng.uniform(*SHARE))
    sheet, box, tags = paper_with_digit(img28, share * min(fw, fh), bank, rng)
    ph, pw = sheet.shape[:2]
    kind = render.choice(rng, SURROUNDS)
    held = kind == "wall"
    warp, cut = place_paper((ph, pw), box, (fh, fw), rng.random() < 0.25, rng)
    flat = cv2.warpPerspective(sheet, warp, (fw, fh), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((ph, pw), np.float32), warp, (fw, fh))
    back = surround(kind, fh, fw, bank, rng)
    offset = (rng.uniform(0.004, 0.02) if held else rng.uniform(0.0, 0.006)) * fh
    shift = np.float32([[1, 0, offset * rng.uniform(-1, 1)], [0, 1, offset]])
    shadow = cv2.GaussianBlur(cv2.warpAffine(cover, shift, (fw, fh)), (0, 0), 2 + offset)
    back *= (1 - rng.uniform(0.2, 0.5) * shadow)[..., None]
    frame = back * (1 - cover[..., None]) + flat
    if held:
        thumb(frame, cover, warp, ph, pw)
    light, shadow_tag = render.illumination(fh, fw, rng)
    photo = render.sensor(render.optics(cv2.multiply(frame, light), 1.0, rng), bank, rng)
    more = {"surround": kind, "share": f"{share:.3f}", "cut": str(cut).lower()}
    return photo, cover, {**tags, **more, "shadow": shadow_tag, "held": str(held).lower()}


def enlarge(photo: np.ndarray, width: int, height: int, rng: Rng) -> np.ndarray:
    """The working-resolution photo at its real size, with fine sensor noise (uint8 RGB)."""
    big = cv2.resize(photo, (width, height), interpolation=cv2.INTER_LINEAR)
    noise = np.empty((height, width), np.uint8)
    cv2.randn(noise, 128, float(rng.uniform(1.5, 3.5)))
    return cv2.addWeighted(big, 1.0, cv2.merge([noise] * 3), 1.0, -128.0)


def pasted_square(
    img28: np.ndarray, bank: render.NoiseBank, rng: Rng
) -> tuple[np.ndarray, dict[str, str]]:
    """A photo or scan crop of the digit on paper pasted onto a square of another grey (uint8
    RGB); the crop spans 35–85 % of the square's side."""
    ch, cw = (int(v) for v in rng.integers(140, 520, 2))
    tone = render.PAPERS[str(rng.choice(["white", "bright_white", "cream", "recycled"]))]
    sheet = render.paper_sheet(ch, cw, tone, bank, rng)
    pen = render.choice(rng, {"ballpoint_blue": 0.3, "gel_black": 0.3, "felt_black": 0.2})
    digit_h = min(ch, cw) * rng.uniform(0.45, 0.8)
    alpha = render.pen_patch(
        render.digit_crop(img28), pen, digit_h, angle=rng.uniform(-10, 10), shear=0.0, rng=rng
    )
    page.ink_at_random(sheet, alpha[: ch - 1, : cw - 1], render.PENS[pen][0], rng, spread=0.2)
    source = "photo" if rng.random() < 0.7 else "scan"
    crop = page.shoot(sheet, bank, rng, photo=source == "photo")
    share = rng.uniform(0.35, 0.85)
    side = round(max(ch, cw) / share)
    grey = int(rng.uniform(40, 215)) if rng.random() < 0.85 else int(rng.choice([0, 255]))
    square = np.full((side, side, 3), grey, np.uint8)
    top, left = int(rng.integers(0, side - ch + 1)), int(rng.integers(0, side - cw + 1))
    square[top : top + ch, left : left + cw] = crop
    return square, {"source": source, "grey": str(grey), "share": f"{share:.2f}", "pen": pen}
