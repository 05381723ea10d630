"""The performance benchmark's inputs, made deterministically from MNIST test digits.

    mnist_png          the 28×28 grey MNIST scan as a PNG (what an upload of a dataset image sends)
    canvas_png         a 280×280 RGBA canvas drawing: dark strokes on a transparent background
    phone_jpeg         a 1600×1200 JPEG "photo": the digit in ballpoint blue on lit, noisy paper
    phone_number_jpeg  the same photo of a 6-digit number (test digits NUMBER_INDICES, one line)

The same bytes go to every target (in-process, TorchServe, web UI), so their timings compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from evalsets.encode import encode as encode_image
from training.data import load_split, resolve_root

INPUT_NAMES = ("mnist_png", "canvas_png", "phone_jpeg", "phone_number_jpeg")
CANVAS_SIDE = 280
PHONE_SIZE = (1600, 1200)  # width, height
PHONE_DIGIT_HEIGHT = 420  # pixels the digit's 28 rows cover in the photo
PHONE_NUMBER_DIGIT_HEIGHT = 200  # pixels each digit's 28 rows cover in the number's photo
DEFAULT_INDEX = 0  # MNIST test image 0 is a 7
NUMBER_INDICES = (0, 1, 2, 3, 4, 5)  # MNIST test images 0–5 read "721041"


def encode(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    """Encode a uint8 array (grey, RGB or RGBA) with Pillow."""
    return encode_image(Image.fromarray(np.ascontiguousarray(pixels)), fmt, **options)


def mnist_png(digit: np.ndarray) -> bytes:
    """The 28×28 scan as a grey PNG."""
    return encode(digit.astype(np.uint8), "PNG")


def canvas_png(digit: np.ndarray, side: int = CANVAS_SIDE) -> bytes:
    """A canvas export: near-black ink whose alpha is the digit, enlarged to side×side."""
    alpha = cv2.resize(digit.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., :3] = 20
    rgba[..., 3] = np.clip(alpha, 0, 255).astype(np.uint8)
    return encode(rgba, "PNG")


def phone_pixels(digits: np.ndarray, seed: int = 0, side: int = PHONE_DIGIT_HEIGHT) -> np.ndarray:
    """A 1600×1200 RGB photo of 28-row digits (one 28×28, or several side by side, 28×28n)
    written in blue on paper under uneven light, each digit `side` pixels tall."""
    rng = np.random.default_rng(seed)
    width, height = PHONE_SIZE
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # Paper lit from the top left, a little warm, with sensor noise.
    light = 0.93 - 0.12 * (xs / width) * (ys / height)
    paper = np.stack([light * 0.98, light * 0.96, light * 0.90], axis=-1)
    size = (side * digits.shape[1] // 28, side)
    ink = cv2.resize(digits.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_CUBIC)
    ink = cv2.GaussianBlur(np.clip(ink, 0.0, 1.0), (5, 5), 0)[..., None]
    # off centre, as hand-held photos are; a wide number is kept a tenth of the frame from the edge
    top, left = int(height * 0.30), min(int(width * 0.42), int(width * 0.9) - size[0])
    region = paper[top : top + size[1], left : left + size[0]]
    pen = np.array([0.15, 0.20, 0.45], np.float32)
    paper[top : top + size[1], left : left + size[0]] = region * (1.0 - ink) + pen * ink
    paper += rng.normal(0.0, 0.02, paper.shape).astype(np.float32)
    return (np.clip(paper, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def phone_jpeg(digits: np.ndarray, seed: int = 0, side: int = PHONE_DIGIT_HEIGHT) -> bytes:
    """The phone photo encoded as a JPEG of typical camera quality."""
    return encode(phone_pixels(digits, seed, side), "JPEG", quality=90)


def make_inputs(digit: np.ndarray, number: Sequence[np.ndarray] = ()) -> dict[str, bytes]:
    """The encoded inputs of one 28×28 uint8 digit and of a number's digits (six copies of the
    digit when none are given), by name."""
    row = np.hstack(list(number) or [digit] * len(NUMBER_INDICES))
    return {
        "mnist_png": mnist_png(digit),
        "canvas_png": canvas_png(digit),
        "phone_jpeg": phone_jpeg(digit),
        "phone_number_jpeg": phone_jpeg(row, side=PHONE_NUMBER_DIGIT_HEIGHT),
    }


def mnist_digit(data_root: str | Path | None, index: int = DEFAULT_INDEX) -> tuple[np.ndarray, int]:
    """One MNIST test image (28×28 uint8) and its label; the root defaults to $MNIST_ROOT."""
    images, labels = load_split(resolve_root(data_root), train=False)
    return images[index].numpy(), int(labels[index])


def mnist_number(
    data_root: str | Path | None, indices: Sequence[int] = NUMBER_INDICES
) -> tuple[list[np.ndarray], str]:
    """MNIST test images (28×28 uint8) and the number they read; the root defaults to
    $MNIST_ROOT."""
    images, labels = load_split(resolve_root(data_root), train=False)
    return [images[i].numpy() for i in indices], "".join(str(int(labels[i])) for i in indices)


def write_inputs(inputs: dict[str, bytes], folder: Path) -> dict[str, Path]:
    """Save the inputs (for reruns and for looking at them); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in inputs.items():
        suffix = ".jpg" if name.endswith("jpeg") else ".png"
        paths[name] = folder / f"{name}{suffix}"
        paths[name].write_bytes(data)
    return paths
