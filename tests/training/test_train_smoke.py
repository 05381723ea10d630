"""A tiny real training run: the loss goes down and a loadable checkpoint comes out."""

import json
from pathlib import Path

import pytest

from recognition.models import load_checkpoint
from training.config import TrainConfig, default_config_path
from training.train import fit, main

pytestmark = [pytest.mark.unit, pytest.mark.data]


def test_loss_goes_down_and_checkpoint_loads(mnist_root: Path, tmp_path: Path) -> None:
    cfg = TrainConfig.load(default_config_path("mlp"))
    cfg.val_size, cfg.ema_decay = 100, 0.0
    out = tmp_path / "mlp.pt"
    report = fit(cfg, mnist_root, out, limit=768, epochs=3)
    losses = [h["train_loss"] for h in report["history"]]
    assert losses[-1] < losses[0]
    assert report["test_accuracy"] > 0.5  # 3 tiny epochs are far above chance (0.1)
    _, meta = load_checkpoint(out)
    assert meta["test_accuracy"] == report["test_accuracy"]
    assert meta["data_sha256"] == report["data_sha256"]
    saved = json.loads(out.with_suffix(".metrics.json").read_text())
    assert saved["confusion_matrix"] == report["confusion_matrix"]


def test_dry_run_cli(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cnn.pt"
    main(["--model", "cnn", "--dry-run", "--data-root", str(mnist_root), "--out", str(out)])
    assert out.is_file() and (tmp_path / "cnn_confusion.png").is_file()


def test_config_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="does not match"):
        main(["--model", "mlp", "--config", str(default_config_path("cnn")), "--dry-run"])


def test_unknown_hyperparameter_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"arch": "mlp", "learning_rat": 0.1}))
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.load(bad)
