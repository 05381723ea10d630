"""Model shapes, parameter counts and checkpoint round trips."""

from pathlib import Path

import numpy as np
import pytest
import torch

from recognition.models import (
    CNN,
    MLP,
    build_model,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)
from recognition.predictor import Predictor
from training.config import weights_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_logits_shape(arch: str) -> None:
    model = build_model(arch).eval()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_is_784_128_64_10() -> None:
    # 784·128+128 + 2·128 (BN) + 128·64+64 + 2·64 + 64·10+10
    assert count_parameters(MLP()) == 100480 + 256 + 8256 + 128 + 650


def test_mlp_hidden_sizes_are_configurable() -> None:
    widths = [m.out_features for m in MLP(hidden=(32,)).modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 10]


def test_cnn_blocks() -> None:
    convs = [m for m in CNN().modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    dense = [m for m in CNN().modules() if isinstance(m, torch.nn.Linear)]
    assert [d.out_features for d in dense] == [128, 10]


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet")


def test_checkpoint_rebuilds_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16, 8]).eval()
    save_checkpoint(tmp_path / "m.pt", model, "mlp", {"hidden": [16, 8]}, {"note": "x"})
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert meta == {"arch": "mlp", "note": "x"}


def test_checkpoint_without_metadata_is_rejected(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="not an mnist-serve checkpoint"):
        load_checkpoint(tmp_path / "bare.pt")


@pytest.mark.parametrize(("arch", "width", "probe"), [("mlp", 64, None), ("cnn", 128, 1152)])
def test_embed_returns_the_penultimate_features_and_the_same_logits(
    arch: str, width: int, probe: int | None
) -> None:
    """And, as the probe a digit memory compares, the CNN's last conv maps (128 × 3 × 3)."""
    model = build_model(arch).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.inference_mode():
        features, logits, probes = model.embed(x)
        assert features.shape == (3, width)
        assert (probes is None) if probe is None else probes.shape == (3, probe)
        torch.testing.assert_close(logits, model(x))


def test_a_checkpoint_loaded_onto_another_device_keeps_its_meta_on_the_cpu(
    tmp_path: Path,
) -> None:
    """A GPU worker's model goes to its device, but the detector's memory is read with NumPy.

    ("meta" stands in for CUDA here: a device whose tensors NumPy cannot read either.)
    """
    bank = np.arange(12, dtype=np.float16).reshape(3, 4)
    save_checkpoint(tmp_path / "m.pt", build_model("mlp"), "mlp", {}, {"memory": {"bank": bank}})
    model, meta = load_checkpoint(tmp_path / "m.pt", "meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert np.array_equal(np.asarray(meta["memory"]["bank"]), bank)
    predictor = Predictor.from_checkpoint(weights_path("cnn"), "meta")
    assert predictor.thresholds.memory is not None  # the committed CNN's memory, readable
