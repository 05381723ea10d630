"""A tiny real training run: the loss goes down and a loadable checkpoint comes out."""

import json
from pathlib import Path

import pytest
import torch

from recognition.models import load_checkpoint
from training.config import TrainConfig, default_config_path
from training.data import load_split
from training.train import fit, main, training_batches

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


def test_batches_do_not_depend_on_how_many_processes_make_them(mnist_root: Path) -> None:
    """A GPU run with batch-making workers trains on what a CPU run without them would."""
    cfg = TrainConfig.load(default_config_path("cnn"))
    cfg.batch_size = 32
    images, labels = load_split(mnist_root, train=True)
    data = (images[:160], labels[:160])
    made = {}
    for workers in (0, 2):
        loader, plan = training_batches(data, cfg, workers)
        gen = torch.Generator().manual_seed(5)
        made[workers] = []
        for _ in range(2):  # two epochs through the same (persistent) workers
            plan.deal(gen)
            made[workers].append(list(loader))
    for epoch in range(2):
        assert len(made[0][epoch]) == len(made[2][epoch]) == 5
        for (x0, y0), (x2, y2) in zip(made[0][epoch], made[2][epoch], strict=True):
            assert torch.equal(x0, x2) and torch.equal(y0, y2)
    assert not torch.equal(made[0][0][0][0], made[0][1][0][0])  # each epoch its own batches
