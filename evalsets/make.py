"""Generate the robustness evaluation sets from the MNIST test images (never the training ones).

Usage:
    python -m evalsets.make [--data-root DIR] [--out artifacts/eval_sets]
        [--sets clean phone canvas lowres containers numbers] [--scale 1.0] [--seed 0] [--jobs N]

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
    numbers      900  rows of 2–10 digits (100 per length): paper scans, wide web canvases and
                      1600×1200 phone photos; gaps from touching to wide, baseline wobble, slant,
                      broken strokes, underlines and dust (evalsets/numbers.py); not made by
                      default: ask for it with --sets numbers

    issue 11 "Real handwriting" (see docs/robustness.md):
    desk         200  12–50 MP phone JPEGs of a card, sticky note or sheet on a desk or a wall
    pasted       300  a photo or scan crop pasted on a square of another grey
    marker       300  fat felt-tip strokes (8–20 % of the digit's height) that bleed
    texture      300  grainy recycled, coloured or kraft paper; pencil with show-through
    tight        300  crops whose strokes touch every side of the image
    stretched    300  the digit stretched to fill its box: 16×16 binary/grey cells, form boxes
    serif        300  European 1s (flag, base) and crossed 7s drawn on MNIST 1s and 7s, + others
    pens         300  very thin (0.8–2 % of the height) and very thick (22–35 %) pens
    sklearn     1797  scikit-learn's bundled 8×8 digits (not MNIST; evaluation only), 8×8 PNG

Each set goes to <out>/<set>/ with labels.csv (file,label,index,tags): `index` is the MNIST test
index (for `numbers`: the row's indices joined by "-", and `label` the number as a string; for
`sklearn`, the index in `load_digits`), `tags` space-separated key=value pairs
describing how the file was made. Every file has its own seed derived from (--seed, set,
position), so the output does not depend on --jobs.
"""

from __future__ import annotations

import argparse
import csv
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from evalsets.encode import Item
from evalsets.items import SET_SIZES, make_one, plan
from evalsets.numbers import NUMBER_SIZES, make_number, plan_numbers
from training.data import load_split, resolve_root

log = logging.getLogger("evalsets")

# the others are too cheap to be worth a process pool
PARALLEL_SETS = {
    "phone",
    "containers",
    "numbers",
    "desk",
    "pasted",
    "marker",
    "texture",
    "pens",
    "serif",
}
DEFAULT_OUT = Path("artifacts/eval_sets")
DEFAULT_JOBS = min(4, os.cpu_count() or 1)


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
        (name, pos, index, variant, images[index], int(labels[index]), seed)
        for pos, (index, variant) in enumerate(plan(name, count, seed, len(images), labels))
    ]
    rows = []
    for pos, (ext, data, tags) in enumerate(_run(work, jobs if name in PARALLEL_SETS else 1)):
        index = work[pos][2]
        file = f"{pos:05d}.{ext}"
        (folder / file).write_bytes(data)
        tag_text = " ".join(f"{k}={v}" for k, v in tags.items())
        rows.append((file, int(labels[index]), index, tag_text))
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "index", "tags"])
        writer.writerows(rows)
    return len(rows)


def build_numbers(
    images: np.ndarray, labels: np.ndarray, out: Path, *, count: int, seed: int, jobs: int
) -> int:
    """Write the `numbers` set and its labels.csv (label: the number's digits); returns the
    number of files."""
    folder = out / "numbers"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    planned = plan_numbers(count, seed, len(images))
    work = [(pos, [images[i] for i in picks], seed) for pos, picks in enumerate(planned)]
    written = []
    for pos, (ext, data, tags) in enumerate(_run(work, jobs, make_number)):
        file = f"{pos:05d}.{ext}"
        (folder / file).write_bytes(data)
        label = "".join(str(int(labels[i])) for i in planned[pos])
        tag_text = " ".join(f"{k}={v}" for k, v in tags.items())
        written.append((file, label, "-".join(map(str, planned[pos])), tag_text))
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "index", "tags"])
        writer.writerows(written)
    return len(written)


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (levels 0–16 as uint8) and their labels."""
    digits = load_digits()
    return digits.images.astype(np.uint8), digits.target.astype(np.int64)


def _run(work: list, jobs: int, maker: Callable[..., Item] = make_one) -> Iterator[Item]:
    if jobs <= 1:
        yield from map(maker, work)
        return
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        yield from pool.imap(maker, work, chunksize=4)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", help="MNIST root (default: $MNIST_ROOT)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=[*SET_SIZES, *NUMBER_SIZES],
        default=list(SET_SIZES),
        help="default: all but numbers",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="processes (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    images, labels = load_split(resolve_root(args.data_root), train=False)
    mnist = images.numpy(), labels.numpy()
    for name in args.sets:
        start = time.perf_counter()
        images, labels = sklearn_digits() if name == "sklearn" else mnist
        count = max(1, round({**SET_SIZES, **NUMBER_SIZES}[name] * args.scale))
        build = build_numbers if name in NUMBER_SIZES else partial(build_set, name)
        written = build(images, labels, args.out, count=count, seed=args.seed, jobs=args.jobs)
        log.info("%-10s %5d files in %5.1f s", name, written, time.perf_counter() - start)


if __name__ == "__main__":
    main()
