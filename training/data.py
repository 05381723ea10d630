"""MNIST loading: the canonical IDX files through torchvision, never downloaded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torchvision.datasets import MNIST

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: the argument, else $MNIST_ROOT; fails with the expected layout."""
    value = root if root is not None else os.environ.get("MNIST_ROOT")
    if not value:
        raise FileNotFoundError(
            "no MNIST data root: pass --data-root or set MNIST_ROOT to a folder holding "
            f"MNIST/raw/{{{', '.join(RAW_FILES)}}}"
        )
    path = Path(value)
    missing = [name for name in RAW_FILES if not (path / "MNIST" / "raw" / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MNIST files missing under {path / 'MNIST' / 'raw'}: {', '.join(missing)} "
            "(expected the four uncompressed IDX files; nothing is downloaded)"
        )
    return path


def load_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N×28×28 uint8) and labels (N int64) of the training or the test set."""
    dataset = MNIST(root=str(root), train=train, download=False)
    return dataset.data.clone(), dataset.targets.clone().long()


def data_checksum(root: Path) -> str:
    """SHA-256 over the four raw files, to tie a checkpoint to the data it was trained on."""
    digest = hashlib.sha256()
    for name in RAW_FILES:
        digest.update((root / "MNIST" / "raw" / name).read_bytes())
    return digest.hexdigest()


def train_val_split(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of range(n) into training and validation indices."""
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}), got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×28×28 → float N×1×28×28 in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)
