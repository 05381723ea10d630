"""The evaluation-set generator and the robustness benchmark on a tiny MNIST written by the test."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks import make_eval_sets, robustness
from recognition.models import build_model, save_checkpoint

pytestmark = pytest.mark.unit

SCALE = 0.01  # 10 clean, 5 phone, 6 canvas, 8 lowres, 20 container variants + 1 big photo


def _bar_digit(rng: np.random.Generator) -> np.ndarray:
    """A 28×28 uint8 stroke figure, MNIST-like framing (ink bright on black)."""
    img = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(4, 8, size=2)
    img[top : top + 18, left + 6 : left + 10] = 255
    img[top : top + 4, left : left + 14] = 220
    return img


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST-layout root whose test split holds 200 synthetic digits (labels 0..9)."""
    root = tmp_path_factory.mktemp("mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 10), ("t10k", 200)):
        images = np.stack([_bar_digit(rng) for _ in range(n)])
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, n) + labels.tobytes()
        )
    return root


@pytest.fixture(scope="module")
def sets(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All five sets generated at a tiny scale."""
    out = tmp_path_factory.mktemp("eval_sets")
    make_eval_sets.main(
        ["--data-root", str(tiny_mnist), "--out", str(out), "--scale", str(SCALE), "--jobs", "1"]
    )
    return out


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_set_has_files_and_labels(sets: Path) -> None:
    for name, size in make_eval_sets.SET_SIZES.items():
        listed = rows(sets / name)
        assert len(listed) >= max(1, round(size * SCALE))
        for row in listed:
            assert 0 <= int(row["label"]) <= 9
            assert 0 <= int(row["index"]) < 200
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
    assert set(variants) == {*make_eval_sets.container_variants(), "photo_6000x4000"}
    with Image.open(sets / "containers" / variants["photo_6000x4000"]) as img:
        assert img.size in {(6000, 4000), (4000, 6000)}
    with Image.open(sets / "containers" / variants["png_16bit"]) as img:
        assert img.mode.startswith("I")
    with Image.open(sets / "containers" / variants["jpeg_cmyk"]) as img:
        assert img.mode == "CMYK"


def test_generation_is_reproducible(tiny_mnist: Path, sets: Path, tmp_path: Path) -> None:
    args = ["--data-root", str(tiny_mnist), "--out", str(tmp_path), "--scale", str(SCALE)]
    make_eval_sets.main([*args, "--sets", "canvas", "lowres", "--jobs", "1"])
    for name in ("canvas", "lowres"):
        for row in rows(sets / name):
            assert (tmp_path / name / row["file"]).read_bytes() == (
                sets / name / row["file"]
            ).read_bytes()


def test_sets_use_test_images_only_and_differ_between_sets() -> None:
    indices = {name: make_eval_sets.plan(name, 50, 0) for name in ("phone", "canvas")}
    assert all(0 <= i < 10_000 for plan in indices.values() for i, _ in plan)
    assert [i for i, _ in indices["phone"]] != [i for i, _ in indices["canvas"]]


def test_load_set_limit_spreads_over_the_set(sets: Path) -> None:
    everything = robustness.load_set(sets / "containers")
    some = robustness.load_set(sets / "containers", limit=5)
    assert len(some) == 5
    assert some[0].path == everything[0].path
    assert some[-1].path == everything[-1].path


def test_summaries_count_refusals_as_wrong() -> None:
    samples = [robustness.Sample(Path(f"{i}.png"), i % 2, {"kind": "ab"[i % 2]}) for i in range(4)]
    outcomes = [
        robustness.Outcome({"m": 0}),
        robustness.Outcome({"m": 1}),
        robustness.Outcome({"m": 1}),
        robustness.Outcome({}, status=422, error="no digit"),
    ]
    summary = robustness.summarize(samples, outcomes, ["m"])
    assert summary["accuracy"] == {"m": 0.5}
    assert summary["refused"] == {"422": 1}
    assert summary["by_tag"]["kind"] == {"a": {"n": 2, "m": 0.5}, "b": {"n": 2, "m": 0.5}}
    wrong = robustness.mistakes(samples, outcomes, "m")
    assert [w["file"] for w in wrong] == ["2.png", "3.png"]
    assert wrong[1]["status"] == 422


def test_benchmark_in_process_writes_its_report(sets: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    for arch in ("mlp", "cnn"):
        model = build_model(arch)
        save_checkpoint(weights / f"mnist_{arch}.pt", model, arch, {}, {"test_accuracy": 0.1})
    out = tmp_path / "report.json"
    robustness.main(
        ["--sets-dir", str(sets), "--weights-dir", str(weights), "--out", str(out), "--limit", "6"]
    )
    report = json.loads(out.read_text())
    results = report["paths"]["in_process"]
    assert set(results) == set(make_eval_sets.SET_SIZES)
    for summary in results.values():
        assert set(summary["accuracy"]) == {"mnist_mlp", "mnist_cnn"}
        assert all(0.0 <= acc <= 1.0 for acc in summary["accuracy"].values())
        assert summary["preprocess_ms"]["p50"] > 0
    assert report["weights"]["mnist_cnn"]["test_accuracy"] == 0.1
    assert "p50" in report["jpeg_1600x1200_ms"]


def test_webui_client_reads_both_models_and_the_ensemble() -> None:
    body = {"mlp_prediction": 3, "cnn_prediction": 5, "ensemble_prediction": 5}
    answers = {model: body.get(key) for model, key in robustness.WebUIClient.ANSWERS.items()}
    assert answers == {"mnist_mlp": 3, "mnist_cnn": 5, "ensemble": 5}


def test_torchserve_client_reads_keys_through_tsclient(tmp_path: Path) -> None:
    text = json.dumps(
        {"management": {"key": "m1"}, "inference": {"key": "i1"}, "API": {"key": "a"}, "x": 1}
    )
    (tmp_path / "key_file.json").write_text(text)
    client = robustness.TorchServeClient("http://127.0.0.1:1", tmp_path / "key_file.json", None)
    assert client.client.keys.current() == {"management": "m1", "inference": "i1", "api": "a"}
    client.client.close()
