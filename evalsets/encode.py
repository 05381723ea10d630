"""File encoders of the evaluation sets: phone JPEGs with EXIF, and every common container."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

# EXIF orientation → the transpose that makes the stored pixels upright, and its inverse
ORIENTATIONS = {
    3: (Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_180),
    6: (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90),
    8: (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270),
}

Item = tuple[str, bytes, dict[str, str]]  # file extension, file bytes, tags


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    """Pillow image → file bytes in `fmt`."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def phone_jpeg(rgb: np.ndarray, rng: np.random.Generator) -> tuple[bytes, dict[str, str]]:
    """Encode an upright photo like a phone: JPEG, EXIF, often stored sideways with a tag."""
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "mnist-serve", "eval phone"  # Make, Model
    orientation = 1
    if rng.random() < 0.3:
        orientation = int(rng.choice([6, 8, 3], p=[0.55, 0.2, 0.25]))
        img = img.transpose(ORIENTATIONS[orientation][1])
    exif[0x0112] = orientation
    quality = int(rng.integers(60, 96))
    data = encode(img, "JPEG", quality=quality, subsampling=2, exif=exif.tobytes())
    return data, {"exif": str(orientation), "quality": str(quality)}


def container_variants() -> dict[str, Callable[[np.ndarray, np.random.Generator], Item]]:
    """Every container variant: name → encoder of a grey scan (uint8, any polarity)."""

    def ink_colour(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        tint = rng.uniform(0.75, 1.0, 3)  # a slightly coloured scan
        return (grey[..., None] * tint).astype(np.uint8)

    def transparent(grey: np.ndarray) -> Image.Image:
        # ink = the side further from the background (the border's median)
        bg = float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))
        alpha = np.abs(grey.astype(np.int16) - int(bg)).clip(0, 255).astype(np.uint8)
        alpha = cv2.normalize(alpha, None, 0, 255, cv2.NORM_MINMAX)
        colour = 0 if bg > 127 else 255
        rgba = np.dstack([np.full_like(grey, colour)] * 3 + [alpha])
        rgba[alpha == 0, :3] = 0
        return Image.fromarray(rgba, "RGBA")

    def png16(grey: np.ndarray) -> bytes:
        return encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG")

    def png48(grey: np.ndarray, rng: np.random.Generator) -> bytes:
        rgb16 = ink_colour(grey, rng).astype(np.uint16) * 257
        ok, buf = cv2.imencode(".png", rgb16[..., ::-1])
        assert ok
        return buf.tobytes()

    def gif_animated(grey: np.ndarray) -> bytes:
        first = Image.fromarray(grey).convert("P")
        blank = Image.fromarray(np.full_like(grey, int(np.median(grey)))).convert("P")
        return encode(first, "GIF", save_all=True, append_images=[blank], duration=500, loop=0)

    def tiff16(grey: np.ndarray) -> bytes:
        return encode(Image.fromarray(grey.astype(np.uint16) * 257), "TIFF")

    L = Image.fromarray  # noqa: N806 - reads like a mode name

    return {
        "png_grey": lambda g, r: ("png", encode(L(g), "PNG"), {}),
        "png_rgba": lambda g, r: ("png", encode(transparent(g), "PNG"), {}),
        "png_16bit": lambda g, r: ("png", png16(g), {}),
        "png_48bit": lambda g, r: ("png", png48(g, r), {}),
        "png_palette": lambda g, r: ("png", encode(L(ink_colour(g, r)).quantize(64), "PNG"), {}),
        "png_bilevel": lambda g, r: (
            "png",
            encode(L(g).convert("1", dither=Image.Dither.NONE), "PNG"),
            {},
        ),
        "jpeg_rgb": lambda g, r: ("jpg", encode(L(ink_colour(g, r)), "JPEG", quality=85), {}),
        "jpeg_grey": lambda g, r: ("jpg", encode(L(g), "JPEG", quality=75), {}),
        "jpeg_cmyk": lambda g, r: ("jpg", encode(L(ink_colour(g, r)).convert("CMYK"), "JPEG"), {}),
        "jpeg_progressive": lambda g, r: (
            "jpg",
            encode(L(ink_colour(g, r)), "JPEG", quality=80, progressive=True),
            {},
        ),
        "gif": lambda g, r: ("gif", encode(L(g).convert("P"), "GIF"), {}),
        "gif_animated": lambda g, r: ("gif", gif_animated(g), {}),
        "bmp": lambda g, r: ("bmp", encode(L(ink_colour(g, r)), "BMP"), {}),
        "tiff_raw": lambda g, r: ("tif", encode(L(ink_colour(g, r)), "TIFF"), {}),
        "tiff_lzw": lambda g, r: ("tif", encode(L(g), "TIFF", compression="tiff_lzw"), {}),
        "tiff_16bit": lambda g, r: ("tif", tiff16(g), {}),
        "webp_lossy": lambda g, r: ("webp", encode(L(ink_colour(g, r)), "WEBP", quality=75), {}),
        "webp_lossless": lambda g, r: ("webp", encode(L(g), "WEBP", lossless=True), {}),
        "webp_alpha": lambda g, r: ("webp", encode(transparent(g), "WEBP", quality=90), {}),
        "avif": lambda g, r: ("avif", encode(L(ink_colour(g, r)), "AVIF", quality=70), {}),
    }
