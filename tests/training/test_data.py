"""MNIST loading on a tiny IDX set written by the test."""

from pathlib import Path

import pytest
import torch

from training.data import data_checksum, load_split, resolve_root, to_input, train_val_split

pytestmark = pytest.mark.unit


def test_loads_idx_files(tiny_mnist: Path) -> None:
    x, y = load_split(tiny_mnist, train=True)
    assert x.shape == (40, 28, 28) and x.dtype == torch.uint8
    assert y.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert load_split(tiny_mnist, train=False)[0].shape == (20, 28, 28)


def test_root_from_environment(tiny_mnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_ROOT", str(tiny_mnist))
    assert resolve_root(None) == tiny_mnist


def test_missing_data_names_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="MNIST_ROOT"):
        resolve_root(None)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        resolve_root(tmp_path)


def test_split_is_seeded_and_disjoint() -> None:
    train, val = train_val_split(100, 20, seed=3)
    again, _ = train_val_split(100, 20, seed=3)
    assert torch.equal(train, again)
    assert len(val) == 20 and not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(100))


def test_checksum_changes_with_data(tiny_mnist: Path) -> None:
    before = data_checksum(tiny_mnist)
    path = tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x03")  # last label was 9
    assert data_checksum(tiny_mnist) != before


def test_to_input_scales() -> None:
    x = to_input(torch.full((2, 28, 28), 255, dtype=torch.uint8))
    assert x.shape == (2, 1, 28, 28) and float(x.max()) == 1.0
