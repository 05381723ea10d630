"""Fixtures for the training tests: a tiny IDX dataset written by the test, and the real MNIST."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests import helpers

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images (N×28×28 uint8) and labels in the canonical IDX format."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    header = struct.pack(">IIII", 0x803, n, 28, 28)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, n) + labels.tobytes()
    )


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A 40/20-image MNIST-layout root of random digits, labels 0..9 in turn."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    for prefix, n in (("train", 40), ("t10k", 20)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        write_idx(raw, prefix, images, (np.arange(n) % 10).astype(np.uint8))
    return tmp_path


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST root (tests.helpers.mnist_root: the one rule for tests)."""
    root = helpers.mnist_root()
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST not found under {root} (set MNIST_ROOT to run this test)")
    return root
