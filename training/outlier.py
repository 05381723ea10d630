"""Outlier-exposure fine-tune: teach a committed model that non-digits have no class.

    python -m training.outlier --model cnn                 # rewrites weights/mnist_cnn.pt
    python -m training.outlier --model mlp --epochs 2 --lr 5e-5
    python -m training.outlier --model cnn --steps 20 --out /tmp/cnn.pt   # timing run

Starts from the committed weights; each step sees a batch of MNIST training digits (the
training run's own split and augmentation, cross-entropy with its label smoothing) and a batch
of generated non-digits (training.nondigits "train" family), whose loss is the cross-entropy to
the uniform distribution (Hendrycks et al., 2019), weighted by --oe-weight. BatchNorm statistics
stay frozen, so digits keep the normalisation they were trained with. The training run's
augmentation is off by default (--augment): on a shared CPU it costs ~4 s a step. Validation digits
decide (accuracy before/after is logged and stored); the 10k test set is scored once at the end
for the checkpoint's record. Run training.calibrate afterwards: it refits the temperature and the
abstention thresholds of the new weights.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recognition.catalog import ARCHS
from recognition.models import load_checkpoint, save_checkpoint
from training.augment import AugmentConfig, augment_batch
from training.config import TrainConfig, default_config_path, weights_path
from training.data import load_split, resolve_root, to_input, train_val_split
from training.evaluate import accuracy
from training.nondigits import cached
from training.train import batches, make_schedule, standardize

log = logging.getLogger("training.outlier")
TRAIN_SEED = 11  # non-digits seen in training; validation uses 12, the held-out set 13
STALE_META = ("temperature", "calibration", "abstention")  # fitted to the old weights


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep every BatchNorm layer in eval mode (running statistics untouched)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def oe_loss(
    digits: torch.Tensor,
    labels: torch.Tensor,
    others: torch.Tensor,
    smoothing: float,
    weight: float,
) -> torch.Tensor:
    """Cross-entropy on the digits plus `weight` × cross-entropy of the non-digits to uniform."""
    to_uniform = -F.log_softmax(others, dim=1).mean(dim=1).mean()
    return F.cross_entropy(digits, labels, label_smoothing=smoothing) + weight * to_uniform


def run_epoch(
    model: nn.Module,
    data: dict[str, Any],
    cfg: TrainConfig,
    optim: tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler],
    args: argparse.Namespace,
) -> float:
    """One pass (or --steps steps) over the training digits; returns the mean loss."""
    images, labels, others = data["images"], data["labels"], data["others"]
    opt, sched = optim
    aug, gen = AugmentConfig.from_dict(cfg.augment), data["gen"]
    model.train()
    freeze_batchnorm(model)
    total, count = 0.0, 0
    for step, idx in enumerate(batches(len(images), cfg.batch_size, gen)):
        if args.steps and step >= args.steps:
            break
        pick = torch.randint(len(others), (args.other_batch,), generator=gen)
        x = torch.cat([to_input(images[idx]), others[pick]])
        if args.augment:
            marks = torch.cat([labels[idx], torch.full((args.other_batch,), -1)])
            x = augment_batch(x, aug, gen, marks)
        logits = model(standardize(x))
        n = len(idx)
        loss = oe_loss(logits[:n], labels[idx], logits[n:], cfg.label_smoothing, args.oe_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total, count = total + float(loss.detach()) * n, count + n
    return total / max(count, 1)


def load_data(root: Path, cfg: TrainConfig, n_other: int) -> dict[str, Any]:
    """The run's training digits, its validation digits and the generated non-digits."""
    images, labels = load_split(root, train=True)
    train_idx, val_idx = train_val_split(len(images), cfg.val_size, cfg.split_seed)
    started = time.perf_counter()
    others = torch.from_numpy(cached("train", n_other, TRAIN_SEED)).unsqueeze(1)
    log.info("%d non-digits generated in %.0f s", n_other, time.perf_counter() - started)
    return {
        "images": images[train_idx],
        "labels": labels[train_idx],
        "val_x": standardize(to_input(images[val_idx])),
        "val_y": labels[val_idx],
        "others": others,
        "gen": torch.Generator().manual_seed(cfg.seed),
    }


def fine_tune(args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune, write the checkpoint, return what was measured."""
    cfg = TrainConfig.load(default_config_path(args.model))
    source = weights_path(args.model)
    model, meta = load_checkpoint(source)
    data = load_data(resolve_root(args.data_root), cfg, args.n_other)
    before = accuracy(model, data["val_x"], data["val_y"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=cfg.weight_decay)
    per_epoch = args.steps or len(data["images"]) // cfg.batch_size
    plan = TrainConfig(cfg.arch, schedule=args.schedule)
    sched = make_schedule(opt, plan, args.epochs * per_epoch)
    started, history = time.perf_counter(), []
    for epoch in range(1, args.epochs + 1):
        loss = run_epoch(model, data, cfg, (opt, sched), args)
        val = accuracy(model, data["val_x"], data["val_y"])
        history.append({"epoch": epoch, "loss": round(loss, 5), "val_accuracy": val})
        log.info("epoch %d: loss %.4f, val accuracy %.4f (before %.4f)", epoch, loss, val, before)
    seconds = round(time.perf_counter() - started, 1)
    test = None
    if args.out is None:  # the committed checkpoint's record; never scored on trial runs
        test_x, test_y = load_split(resolve_root(args.data_root), train=False)
        test = accuracy(model, standardize(to_input(test_x)), test_y)
    record = {
        "epochs": args.epochs,
        "steps_per_epoch": per_epoch,
        "learning_rate": args.lr,
        "schedule": args.schedule,
        "augment": cfg.augment if args.augment else None,
        "oe_weight": args.oe_weight,
        "nondigits": args.n_other,
        "val_accuracy_before": before,
        "history": history,
        "seconds": seconds,
        "test_accuracy_before": meta.get("test_accuracy"),
    }
    kept = {k: v for k, v in meta.items() if k not in STALE_META and k != "arch"}
    new_meta = {**kept, "outlier_exposure": record}
    if test is not None:
        new_meta["test_accuracy"] = test
    save_checkpoint(args.out or source, model, cfg.arch, cfg.arch_kwargs, new_meta)
    return {**record, "test_accuracy": test}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", choices=ARCHS, required=True, help="which model")
    p.add_argument("--data-root", help="MNIST root holding MNIST/raw (default: $MNIST_ROOT)")
    p.add_argument("--out", type=Path, help="checkpoint path (default: the committed one)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the digits (%(default)s)")
    p.add_argument("--steps", type=int, default=0, help="stop each epoch after N steps (0: all)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (%(default)s)")
    p.add_argument(
        "--schedule", choices=("constant", "cosine"), default="constant", help="(%(default)s)"
    )
    p.add_argument("--oe-weight", type=float, default=0.5, help="non-digit loss (%(default)s)")
    p.add_argument("--other-batch", type=int, default=64, help="non-digits/step (%(default)s)")
    p.add_argument("--n-other", type=int, default=6000, help="non-digit pool (%(default)s)")
    p.add_argument("--augment", action="store_true", help="the run's augmentation (slow on CPU)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = fine_tune(args)
    print(
        f"{args.model}: val accuracy {result['val_accuracy_before']:.4f} → "
        f"{result['history'][-1]['val_accuracy']:.4f}; test accuracy {result['test_accuracy']}"
        f" ({result['seconds']:.0f} s of fine-tuning)"
    )


if __name__ == "__main__":
    main()
