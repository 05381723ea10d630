"""Shared test helpers: free loopback ports, real MNIST samples, image bytes, a live TorchServe."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from recognition.catalog import MODEL_NAMES
from stack.gunicorn import Gunicorn, clean_environ, webui_environ
from stack.paths import REPO_ROOT
from stack.ports import free_ports
from stack.ports import loopback_overrides as free_loopback_overrides
from stack.torchserve import TorchServe

__all__ = ["MODEL_NAMES", "REPO_ROOT"]


def loopback_overrides() -> dict[str, str]:
    """TorchServe settings for a test: free 127.0.0.1 ports, one worker per model."""
    return {**free_loopback_overrides(), "default_workers_per_model": "1"}


def gunicorn_for(server: TorchServe, log_path: Path) -> Gunicorn:
    """The web UI under gunicorn on a free loopback port in front of a running TorchServe."""
    (port,) = free_ports(1)
    urls = webui_environ(server.inference_url, server.management_url, server.key_file)
    return Gunicorn(f"127.0.0.1:{port}", clean_environ(urls), log_path)


def wait_for_health(
    url: str, process: subprocess.Popen, timeout: float, poll: float, log: Callable[[], str]
) -> None:
    """Poll GET <url>/api/health until it answers 200; fail the test, with `log()`, when
    `process` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up: {log()}")
        time.sleep(poll)


def mnist_root() -> Path:
    """The real MNIST root: MNIST_ROOT, else ../shared/mnist beside the checkout."""
    return Path(os.environ.get("MNIST_ROOT") or REPO_ROOT.parent / "shared" / "mnist")


def _read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The 10 000 MNIST test images (uint8, N×28×28) and labels; skips the test when absent."""
    return mnist_split("t10k")


def mnist_train_set() -> tuple[np.ndarray, np.ndarray]:
    """The 60 000 MNIST training images (uint8, N×28×28) and labels; skips when absent."""
    return mnist_split("train")


def mnist_split(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one MNIST split ("t10k" or "train"); skips when absent."""
    raw = mnist_root() / "MNIST" / "raw"
    images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if not (images.is_file() and labels.is_file()):
        pytest.skip(f"real MNIST not found under {raw} (set MNIST_ROOT)")
    return _read_idx(images), _read_idx(labels)


def mnist_samples(count: int) -> list[tuple[bytes, int]]:
    """`count` test images spread over the whole test set, as (PNG bytes, label)."""
    images, labels = mnist_test_set()
    picks = np.linspace(0, len(images) - 1, count).round().astype(int)
    return [(png_bytes(images[i]), int(labels[i])) for i in picks]


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG encoding of a uint8 grey image."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    """Encoded bytes of a Pillow image."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def canvas_digit(size: int = 280) -> bytes:
    """A canvas-like PNG: a thick dark '1' on white, `size`×`size` pixels."""
    pixels = np.full((size, size), 255, np.uint8)
    pixels[size // 5 : size - size // 5, size // 2 - size // 20 : size // 2 + size // 20] = 0
    return png_bytes(pixels)


Box = tuple[int, int, int, int]  # x, y, w, h


def digit_row(
    digits: list[np.ndarray], scale: int = 4, gap: int = 8, margin: int = 40
) -> tuple[bytes, list[Box]]:
    """A scan-like PNG of MNIST digits side by side, each enlarged `scale` times, dark ink on
    white with `gap` pixels between their 28×28 frames; and each frame's [x, y, w, h]."""
    side = 28 * scale
    width = 2 * margin + len(digits) * side + (len(digits) - 1) * gap
    paper = np.full((side + 2 * margin, width), 255, np.uint8)
    cells = []
    for i, pixels in enumerate(digits):
        x = margin + i * (side + gap)
        ink = np.kron(np.asarray(pixels, np.uint8), np.ones((scale, scale), np.uint8))
        paper[margin : margin + side, x : x + side] = 255 - ink
        cells.append((x, margin, side, side))
    return png_bytes(paper), cells


def inside(box: list[int], cell: Box) -> bool:
    """Whether a found box [x, y, w, h] lies within a cell [x, y, w, h]."""
    x, y, w, h = box
    cx, cy, cw, ch = cell
    return cx <= x and cy <= y and x + w <= cx + cw and y + h <= cy + ch


def read_right_by_both(
    server: LiveTorchServe, count: int, scan: int = 300
) -> list[tuple[np.ndarray, int]]:
    """Up to `count` MNIST test digits of different classes that both served models read right
    alone (so a test of the serving path does not hinge on the models); skips when untrained."""
    if server.untrained:
        pytest.skip(f"untrained placeholder weights for {sorted(server.untrained)}")
    images, labels = mnist_test_set()
    chosen: dict[int, np.ndarray] = {}
    for pixels, value in zip(images[:scan], labels[:scan], strict=True):
        label = int(value)
        if label in chosen:
            continue
        answers = [
            server.predict(model, png_bytes(pixels), headers={"Content-Type": "image/png"})
            for model in MODEL_NAMES
        ]
        if all(a.status_code == 200 and a.json()["prediction"] == label for a in answers):
            chosen[label] = pixels
        if len(chosen) == count:
            break
    return [(pixels, label) for label, pixels in chosen.items()]


LETTER_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")


def drawn_letter(char: str, size: int = 280) -> bytes:
    """A canvas-like PNG: one dark capital letter (DejaVu Serif Bold) on white."""
    if not LETTER_FONT.is_file():
        pytest.skip(f"{LETTER_FONT} is missing (Debian's fonts-dejavu-core)")
    canvas = Image.new("L", (size, size), 255)
    font = ImageFont.truetype(str(LETTER_FONT), int(size * 0.6))
    ImageDraw.Draw(canvas).text((size / 2, size / 2), char, font=font, fill=20, anchor="mm")
    return encode(canvas)


@dataclass
class LiveTorchServe:
    """A running TorchServe started by the `torchserve` fixture, with its URLs and keys."""

    server: TorchServe
    weights_dir: Path  # the checkpoints the archives were built from
    untrained: frozenset[str]  # models served from a placeholder checkpoint (weights missing)

    @property
    def inference_url(self) -> str:
        """Base URL of the inference API."""
        return self.server.inference_url

    @property
    def management_url(self) -> str:
        """Base URL of the management API."""
        return self.server.management_url

    @property
    def metrics_url(self) -> str:
        """Base URL of the metrics API."""
        return self.server.metrics_url

    @property
    def key_file(self) -> Path:
        """The server's key_file.json."""
        return self.server.key_file

    def keys(self) -> dict[str, str]:
        """Current keys by kind: inference, management, api."""
        return self.server.keys()

    def auth(self, kind: str = "inference") -> dict[str, str]:
        """Authorization header with the current key of one kind."""
        return self.server.auth(kind)

    def predict(
        self,
        model: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> requests.Response:
        """POST one request to /predictions/<model> with the inference key."""
        return requests.post(
            f"{self.inference_url}/predictions/{model}",
            data=data,
            headers={**self.auth("inference"), **(headers or {})},
            timeout=30,
            **kw,
        )

    def describe(self, model: str) -> list[dict[str, Any]]:
        """The management API's description of one model."""
        return self.server.describe(model)
