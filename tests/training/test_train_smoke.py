"""A tiny real training run: the loss goes down and a loadable checkpoint comes out."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from recognition.models import load_checkpoint
from training.config import TrainConfig, default_config_path
from training.data import load_split
from training.train import AugmentedBatches, fit, main, training_batches

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


def test_a_fine_tune_starts_from_its_checkpoint(mnist_root: Path, tmp_path: Path) -> None:
    """`init_from` loads the start's weights (an epoch at a vanishing learning rate keeps its
    accuracy; the same epoch from scratch is near chance) and records the start's SHA-256."""
    cfg = TrainConfig.load(default_config_path("mlp"))
    cfg.val_size, cfg.ema_decay = 100, 0.0
    start = tmp_path / "start.pt"
    first = fit(cfg, mnist_root, start, limit=768, epochs=3)
    cfg.learning_rate, cfg.schedule = 1e-8, "constant"
    cold = fit(cfg, mnist_root, tmp_path / "cold.pt", limit=768, epochs=1)
    cfg.init_from = str(start)
    tuned = fit(cfg, mnist_root, tmp_path / "tuned.pt", limit=768, epochs=1)
    assert abs(tuned["test_accuracy"] - first["test_accuracy"]) < 0.03
    assert cold["test_accuracy"] < first["test_accuracy"] - 0.2
    assert tuned["init_sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    cfg.arch, cfg.arch_kwargs = "cnn", {}
    with pytest.raises(ValueError, match="not a cnn"):
        fit(cfg, mnist_root, tmp_path / "wrong.pt", limit=768, epochs=1)


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


def test_training_batches_draw_the_label_specific_styles(mnist_root: Path) -> None:
    """The serifs (a 1's flag, a 7's crossbar) need each digit's label: a batch of training 1s
    made with p_serif = 1 differs from the same batch made without them, and carries more ink."""
    cfg = TrainConfig.load(default_config_path("cnn"))
    images, labels = load_split(mnist_root, train=True)
    ones = labels == 1
    data = (images[ones][:32], labels[ones][:32])
    ink = {}
    for p_serif in (0.0, 1.0):
        cfg.augment = {"p": 1.0, "p_serif": p_serif}
        batches = AugmentedBatches(data, cfg)
        x, y = batches[(torch.arange(32), 7)]
        assert torch.equal(y, data[1])
        ink[p_serif] = x
    changed = (ink[1.0] != ink[0.0]).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.9
    assert (ink[1.0] > ink[1.0].min()).sum() > (ink[0.0] > ink[0.0].min()).sum()
