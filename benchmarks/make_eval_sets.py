"""Generate the robustness evaluation sets from the MNIST test images (never the training ones).

Usage:
    python -m benchmarks.make_eval_sets [--data-root DIR] [--out artifacts/eval_sets]
        [--sets clean phone canvas lowres containers] [--scale 1.0] [--seed 0] [--jobs N]

Sets (default sizes; --scale multiplies them):
    clean       1000  the MNIST test digits as 28×28 grey PNGs
    phone        500  JPEG phone photos (1600×1200 up to 2016×1512) of the digit written with a
                      ballpoint, gel pen, pencil, felt tip or marker on plain, lined, squared or
                      sticky-note paper: small and off-centre, rotated up to ±15°, perspective,
                      shadows, vignetting, blur, noise, sharpening, JPEG; 30 % stored sideways or
                      upside down with an EXIF orientation tag
    canvas       600  280×280 PNG web-canvas drawings with a fat round brush: black or coloured
                      strokes on transparent, white on transparent, black on white, white on black
    lowres       800  the digit shrunk to 8–16 px and enlarged again (nearest, linear, cubic)
    containers   606  clean scans in every common container: PNG (grey, RGBA, 16-bit, 48-bit,
                      palette, bilevel), JPEG (RGB, grey, CMYK, progressive), GIF (still and
                      animated), BMP, TIFF (raw, LZW, 16-bit), WebP (lossy, lossless, alpha), AVIF,
                      plus 6000×4000 phone photos

Each set goes to <out>/<set>/ with labels.csv (file,label,index,tags): `index` is the MNIST test
index, `tags` space-separated key=value pairs describing how the file was made. Every file has
its own seed derived from (--seed, set, position), so the output does not depend on --jobs.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks import digit_render as render

log = logging.getLogger("make_eval_sets")

SET_SIZES = {"clean": 1000, "phone": 500, "canvas": 600, "lowres": 800, "containers": 600}
SET_IDS = {name: i for i, name in enumerate(SET_SIZES)}
PARALLEL_SETS = {"phone", "containers"}  # the others are too cheap to be worth a process pool
BIG_PHOTOS = 6  # 6000×4000 photos added to `containers`
DEFAULT_OUT = Path("artifacts/eval_sets")
DEFAULT_JOBS = min(4, os.cpu_count() or 1)

# (width, height) of phone photos and how often each appears
PHONE_FRAMES = {(1600, 1200): 0.5, (1200, 1600): 0.3, (2016, 1512): 0.1, (1512, 2016): 0.1}
# EXIF orientation → the transpose that makes the stored pixels upright, and its inverse
ORIENTATIONS = {
    3: (Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_180),
    6: (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90),
    8: (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270),
}

Item = tuple[str, bytes, dict[str, str]]  # file name, file bytes, tags

_BANK: render.NoiseBank | None = None


def _bank(seed: int) -> render.NoiseBank:
    """The process's noise tiles (built once per process, from the run's seed)."""
    global _BANK  # noqa: PLW0603 - one large immutable table per worker process
    if _BANK is None:
        _BANK = render.NoiseBank(seed)
    return _BANK


# ---------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# One file per (set, position)
# ---------------------------------------------------------------------------------------------


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
}


def plan(name: str, count: int, seed: int, available: int = 10_000) -> list[tuple[int, str]]:
    """(MNIST test index, container variant or "") for each file of a set, seeded; `available`
    is the number of test images (10 000 in MNIST)."""
    rng = np.random.default_rng([seed, SET_IDS[name]])
    if name != "containers":
        picks = rng.choice(available, size=min(count, available), replace=False)
        return [(int(i), "") for i in picks]
    variants = list(container_variants())
    per_variant = max(1, count // len(variants))
    names = [v for v in variants for _ in range(per_variant)]
    names += ["photo_6000x4000"] * max(1, round(BIG_PHOTOS * count / SET_SIZES["containers"]))
    indices = rng.choice(available, size=len(names), replace=len(names) > available)
    return [(int(i), v) for i, v in zip(indices, names, strict=True)]


def _make_one(job: tuple[str, int, int, str, np.ndarray, int]) -> Item:
    name, position, _, variant, img28, seed = job
    rng = np.random.default_rng([seed, SET_IDS[name], position])
    if name == "containers":
        return make_container(img28, rng, seed, variant)
    return MAKERS[name](img28, rng, seed)


def build_set(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    out: Path,
    *,
    count: int,
    seed: int,
    jobs: int,
) -> int:
    """Write one set and its labels.csv; returns the number of files."""
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    work = [
        (name, pos, index, variant, images[index], seed)
        for pos, (index, variant) in enumerate(plan(name, count, seed, len(images)))
    ]
    rows = []
    for pos, (ext, data, tags) in enumerate(_run(work, jobs if name in PARALLEL_SETS else 1)):
        _, _, index, _, _, _ = work[pos]
        file = f"{pos:05d}.{ext}"
        (folder / file).write_bytes(data)
        tag_text = " ".join(f"{k}={v}" for k, v in tags.items())
        rows.append((file, int(labels[index]), index, tag_text))
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "index", "tags"])
        writer.writerows(rows)
    return len(rows)


def _run(work: list, jobs: int) -> Iterator[Item]:
    if jobs <= 1:
        yield from map(_make_one, work)
        return
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        yield from pool.imap(_make_one, work, chunksize=4)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", help="MNIST root (default: $MNIST_ROOT)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument(
        "--sets", nargs="+", choices=list(SET_SIZES), default=list(SET_SIZES), help="default: all"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="processes (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from training.data import load_split, resolve_root  # torch: kept out of worker start-up

    images, labels = load_split(resolve_root(args.data_root), train=False)
    images, labels = images.numpy(), labels.numpy()
    for name in args.sets:
        start = time.perf_counter()
        count = max(1, round(SET_SIZES[name] * args.scale))
        written = build_set(
            name, images, labels, args.out, count=count, seed=args.seed, jobs=args.jobs
        )
        log.info("%-10s %5d files in %5.1f s", name, written, time.perf_counter() - start)


if __name__ == "__main__":
    main()
