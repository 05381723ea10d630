"""A digit on a page, photographed or scanned at a modest size: the common scene of the issue-11
sets whose subject is the ink or the writer rather than the frame (`evalsets.inks`,
`evalsets.writers`).

Images are float32 RGB reflectance in [0, 1] until `shoot` turns them into uint8 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from evalsets import render
from evalsets.encode import encode

Rng = np.random.Generator


def ink_at_random(
    sheet: np.ndarray,
    alpha: np.ndarray,
    colour: tuple[float, float, float],
    rng: Rng,
    spread: float = 0.3,
) -> tuple[int, int]:
    """Ink `alpha` onto the sheet (in place) with its centre within `spread` of the middle;
    returns (top, left). The patch must fit on the sheet."""
    (sh, sw), (ph, pw) = sheet.shape[:2], alpha.shape
    cy = rng.uniform(0.5 - spread / 2, 0.5 + spread / 2) * sh
    cx = rng.uniform(0.5 - spread / 2, 0.5 + spread / 2) * sw
    top = int(np.clip(cy - ph / 2, 0, sh - ph))
    left = int(np.clip(cx - pw / 2, 0, sw - pw))
    render.ink_on(sheet, alpha, top, left, colour)
    return top, left


def shoot(sheet: np.ndarray, bank: render.NoiseBank, rng: Rng, *, photo: bool) -> np.ndarray:
    """The page as uint8 RGB: a phone photo (light, blur, sensor) or a flat scan (slight noise)."""
    h, w = sheet.shape[:2]
    if photo:
        light, _ = render.illumination(h, w, rng)
        img = render.optics(cv2.multiply(sheet, light), max(h, w) / 1600, rng)
        return render.sensor(img, bank, rng)
    img = cv2.GaussianBlur(sheet, (0, 0), rng.uniform(0.3, 0.9))
    img = cv2.scaleAdd(bank.crop(bank.white, h, w, rng), rng.uniform(0.002, 0.012), img)
    return render.to_uint8(img)


def save(rgb: np.ndarray, rng: Rng, *, jpeg_share: float = 0.6) -> tuple[str, bytes, str]:
    """(extension, bytes, quality or "png") of a page: a JPEG at quality 70–95 or a PNG."""
    img = Image.fromarray(rgb)
    if rng.random() < jpeg_share:
        quality = int(rng.integers(70, 96))
        return "jpg", encode(img, "JPEG", quality=quality), str(quality)
    return "png", encode(img, "PNG"), "png"
