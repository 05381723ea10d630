"""Generated non-digits: three families that share nothing, each drawn as the pipeline frames it."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch

from training import nondigits
from training.detector import with_augmented
from training.nondigits import CANVAS, FAMILIES, Family, cached, generate, shape

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("a,b", list(combinations(FAMILIES, 2)))
def test_families_share_no_letter_font_or_shape(a: str, b: str) -> None:
    one, other = FAMILIES[a], FAMILIES[b]
    assert not set(one.letters) & set(other.letters)
    assert not set(one.hershey) & set(other.hershey)
    assert not set(one.fonts) & set(other.fonts)
    assert not set(one.shapes) & set(other.shapes)


@pytest.mark.parametrize("kind", FAMILIES["dev"].shapes)
def test_each_dev_shape_draws_ink_inside_the_canvas(kind: str) -> None:
    drawing = shape(kind, 4, np.random.default_rng(0))
    dark = drawing < 128
    assert drawing.shape == (CANVAS, CANVAS)
    assert 0.01 < dark.mean() < 0.6
    assert not dark[0].any() and not dark[-1].any()  # nothing runs off the top or bottom


def test_generate_frames_each_family_like_mnist() -> None:
    images = generate("dev", 12, seed=3)
    assert images.shape == (12, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert (images.reshape(12, -1).max(axis=1) > 0.5).all()
    assert np.array_equal(images, generate("dev", 12, seed=3))  # seeded
    assert not np.array_equal(images, generate("train", 12, seed=3))


def test_with_augmented_keeps_the_clean_images_first() -> None:
    clean = torch.from_numpy(generate("train", 8, seed=1)).unsqueeze(1)
    both = with_augmented(clean, torch.full((8,), -1), torch.Generator().manual_seed(0))
    assert both.shape == (16, 1, 28, 28)
    assert torch.equal(both[:8], clean)
    assert not torch.equal(both[8:], clean)


def test_the_cache_is_drawn_anew_when_a_family_changes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(nondigits, "CACHE_DIR", tmp_path)
    first = cached("dev", 4, seed=2)
    assert np.array_equal(first, cached("dev", 4, seed=2))  # read back from the cache
    dev = FAMILIES["dev"]
    changed = Family("o", dev.hershey, dev.fonts, dev.pens, ("wave",))
    monkeypatch.setitem(nondigits.FAMILIES, "dev", changed)
    assert not np.array_equal(first, cached("dev", 4, seed=2))
    assert len(list(tmp_path.glob("dev-4-2-*.npy"))) == 2
