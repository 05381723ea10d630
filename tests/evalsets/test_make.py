"""The evaluation-set generator on a tiny MNIST written by the test."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from evalsets import encode, items, make
from tests.evalsets.tiny_mnist import SCALE, make_sets, write_tiny_mnist

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST-layout root with 200 synthetic test digits."""
    return write_tiny_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="module")
def sets(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every set generated at a tiny scale."""
    return make_sets(tiny_mnist, tmp_path_factory.mktemp("eval_sets"), "--jobs", "1")


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_set_has_files_and_labels(sets: Path) -> None:
    for name, size in items.SET_SIZES.items():
        listed = rows(sets / name)
        assert len(listed) >= max(1, round(size * SCALE))
        for row in listed:
            assert 0 <= int(row["label"]) <= 9
            assert 0 <= int(row["index"]) < (1797 if name == "sklearn" else 200)
            with Image.open(sets / name / row["file"]) as img:
                img.load()


def test_phone_photos_are_large_jpegs_upright_after_exif(sets: Path) -> None:
    for row in rows(sets / "phone"):
        tags = dict(pair.split("=") for pair in row["tags"].split())
        width, height = map(int, tags["frame"].split("x"))
        with Image.open(sets / "phone" / row["file"]) as img:
            assert img.format == "JPEG"
            assert int(tags["exif"]) == img.getexif().get(0x0112)
            assert ImageOps.exif_transpose(img).size == (width, height)


def test_containers_cover_every_variant_and_a_6000x4000_photo(sets: Path) -> None:
    variants = {}
    for row in rows(sets / "containers"):
        tags = dict(pair.split("=") for pair in row["tags"].split())
        variants[tags["variant"]] = row["file"]
    assert set(variants) == {*encode.container_variants(), "photo_6000x4000"}
    with Image.open(sets / "containers" / variants["photo_6000x4000"]) as img:
        assert img.size in {(6000, 4000), (4000, 6000)}
    with Image.open(sets / "containers" / variants["png_16bit"]) as img:
        assert img.mode.startswith("I")
    with Image.open(sets / "containers" / variants["jpeg_cmyk"]) as img:
        assert img.mode == "CMYK"


def test_generation_is_reproducible(tiny_mnist: Path, sets: Path, tmp_path: Path) -> None:
    cheap = ("canvas", "lowres", "tight", "stretched", "serif", "sklearn")
    make_sets(tiny_mnist, tmp_path, "--sets", *cheap, "--jobs", "1")
    for name in cheap:
        for row in rows(sets / name):
            assert (tmp_path / name / row["file"]).read_bytes() == (
                sets / name / row["file"]
            ).read_bytes()


def test_sets_use_test_images_only_and_differ_between_sets() -> None:
    indices = {name: items.plan(name, 50, 0) for name in ("phone", "canvas")}
    assert all(0 <= i < 10_000 for plan in indices.values() for i, _ in plan)
    assert [i for i, _ in indices["phone"]] != [i for i, _ in indices["canvas"]]


def test_desk_photos_are_12_to_50_megapixel_jpegs(sets: Path) -> None:
    for row in rows(sets / "desk"):
        tags = dict(pair.split("=") for pair in row["tags"].split())
        with Image.open(sets / "desk" / row["file"]) as img:
            assert img.format == "JPEG"
            assert ImageOps.exif_transpose(img).size == tuple(map(int, tags["frame"].split("x")))
            assert 12e6 <= img.width * img.height <= 51e6


def test_serif_mixes_ones_and_sevens_with_other_digits() -> None:
    labels = np.arange(10_000) % 10
    picks = items.plan("serif", 300, 0, labels=labels)
    drawn = labels[[i for i, _ in picks]]
    assert len(set(picks)) == 300
    assert (drawn == 1).sum() == 135 and (drawn == 7).sum() == 120
    assert len(set(drawn.tolist())) == 10
    with pytest.raises(ValueError, match="labels"):
        items.plan("serif", 10, 0)


def test_sklearn_set_holds_every_bundled_digit_with_its_label(sets: Path) -> None:
    images, labels = make.sklearn_digits()
    for row in rows(sets / "sklearn"):
        assert int(row["label"]) == labels[int(row["index"])]
        with Image.open(sets / "sklearn" / row["file"]) as img:
            assert img.size == (8, 8)
            level = np.asarray(img).astype(int)
        raw = images[int(row["index"])].astype(int)
        expected = raw if "levels=raw" in row["tags"] else np.round(raw * 255 / 16)
        assert (level == expected).all()
