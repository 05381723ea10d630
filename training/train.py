"""Train the MLP or the CNN on MNIST and write a checkpoint, its metrics and plots.

    python -m training.train --model cnn                     # config/cnn_best_hyperparams.json
    python -m training.train --model mlp --data-root DIR     # or MNIST_ROOT=DIR
    python -m training.train --model cnn --dry-run           # tiny smoke run into a temp folder

Selection uses a validation split carved from the 60k training images; the 10k test set is only
read once at the end, for the report.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from recognition.catalog import ARCHS
from recognition.constants import MNIST_MEAN, MNIST_STD
from recognition.models import build_model, load_checkpoint, save_checkpoint
from recognition.preprocessing import standardize
from training.augment import AugmentConfig, augment_batch
from training.config import REPO_ROOT, TrainConfig, default_config_path, weights_path
from training.data import data_checksum, load_split, resolve_root, to_input, train_val_split
from training.evaluate import accuracy, report_on_test_set, write_report

log = logging.getLogger("training.train")


def batches(n: int, size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches covering range(n); the last partial batch is dropped."""
    order = torch.randperm(n, generator=gen)
    for start in range(0, n - size + 1, size):
        yield order[start : start + size]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW as configured."""
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if cfg.optimizer not in kinds:
        raise ValueError(f"optimizer must be one of {sorted(kinds)}, got {cfg.optimizer!r}")
    params = model.parameters()
    return kinds[cfg.optimizer](params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def make_schedule(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, cfg.learning_rate, total_steps=steps)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def distillation_loss(
    logits: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL divergence to a teacher's softened distribution (Hinton et al.)."""
    t = temperature
    return F.kl_div(
        F.log_softmax(logits / t, dim=1), F.softmax(teacher / t, dim=1), reduction="batchmean"
    ) * (t * t)


class BatchPlan(Sampler):
    """The keys of one epoch's batches, (indices, seed) each, dealt anew by `deal` per epoch.

    Batch i of an epoch augments its slice of the epoch's shuffled order with a generator
    seeded `seed + i`, so the batches are the same whether the training process makes them or
    worker processes do.
    """

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size
        self.keys: list[tuple[torch.Tensor, int]] = []

    def deal(self, gen: torch.Generator) -> None:
        """This epoch's order and batch seeds, drawn from the run's generator."""
        slices = list(batches(self.n, self.size, gen))
        seed = int(torch.randint(2**62, (1,), generator=gen))
        self.keys = [(idx, seed + i) for i, idx in enumerate(slices)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return self.n // self.size


class AugmentedBatches(Dataset):
    """The training digits, made into an augmented batch per `BatchPlan` key."""

    def __init__(self, data: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig) -> None:
        self.images, self.labels = data
        self.aug = AugmentConfig.from_dict(cfg.augment)

    def __getitem__(self, key: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx, seed = key
        gen = torch.Generator().manual_seed(seed)
        labels = self.labels[idx]
        x = standardize(augment_batch(to_input(self.images[idx]), self.aug, gen, labels))
        return x, labels


def _one_thread(_: int) -> None:
    """A batch-making worker process uses one core; the processes share the machine."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def training_batches(
    data: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, workers: int
) -> tuple[DataLoader, BatchPlan]:
    """The run's augmented batches, made by `workers` processes (0: in-process), and the plan
    to `deal` before each epoch.

    The workers are spawned once for the run (a fork of a process whose thread pools have run
    can deadlock) and make up to 8 batches each ahead of the GPU.
    """
    plan = BatchPlan(data[0].shape[0], cfg.batch_size)
    loader = DataLoader(
        AugmentedBatches(data, cfg),
        batch_size=None,
        sampler=plan,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=8 if workers else None,
        persistent_workers=workers > 0,
        multiprocessing_context="spawn" if workers else None,
    )
    return loader, plan


def train_epoch(
    *,
    model: nn.Module,
    ema: AveragedModel | None,
    teacher: nn.Module | None,
    batches: DataLoader,
    cfg: TrainConfig,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    desc: str,
) -> float:
    """One pass over the training data; returns the mean loss."""
    device = next(model.parameters()).device
    model.train()
    total, count = 0.0, 0
    bar = tqdm(batches, total=len(batches), desc=desc, leave=False, disable=None)
    for inputs, targets in bar:
        # channels_last: faster convolutions on CPU and on tensor cores.
        x = inputs.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = targets.to(device, non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if teacher is not None:
            with torch.no_grad():
                soft = teacher(x)
            kd = distillation_loss(logits, soft, cfg.distill_temperature)
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.detach().item() * y.numel()
        count += y.numel()
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def load_teacher(cfg: TrainConfig) -> nn.Module | None:
    """The frozen teacher for distillation, if configured."""
    if not cfg.distill_from:
        return None
    teacher, meta = load_checkpoint(REPO_ROOT / cfg.distill_from)
    log.info("distilling from %s (test accuracy %s)", cfg.distill_from, meta.get("test_accuracy"))
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_initial(model: nn.Module, cfg: TrainConfig) -> str | None:
    """Start from `cfg.init_from`'s weights (a fine-tune); returns that file's SHA-256, if any."""
    if not cfg.init_from:
        return None
    path = REPO_ROOT / cfg.init_from
    start, meta = load_checkpoint(path)
    if meta["arch"] != cfg.arch:
        raise ValueError(f"{cfg.init_from} holds a {meta['arch']}, not a {cfg.arch}")
    model.load_state_dict(start.state_dict(), strict=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    log.info("fine-tuning from %s (sha256 %s…)", cfg.init_from, digest[:12])
    return digest


def start_model(
    cfg: TrainConfig, device: torch.device
) -> tuple[nn.Module, AveragedModel | None, str | None]:
    """The model to train (fresh, or `init_from`'s weights) on `device`, its weight average
    (None when `ema_decay` is 0) and the SHA-256 of the checkpoint it started from."""
    model = build_model(cfg.arch, **cfg.arch_kwargs)
    init_sha256 = load_initial(model, cfg)
    model.to(device)
    if cfg.ema_decay <= 0:
        return model, None, init_sha256
    average = get_ema_multi_avg_fn(cfg.ema_decay)
    return model, AveragedModel(model, multi_avg_fn=average, use_buffers=True), init_sha256


def split(
    cfg: TrainConfig, root: Path, limit: int | None
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(training images, labels) and the standardised validation (inputs, labels)."""
    images, labels = load_split(root, train=True)
    if limit:
        images, labels = images[:limit], labels[:limit]
    val_size = min(cfg.val_size, images.shape[0] // 5)
    train_idx, val_idx = train_val_split(images.shape[0], val_size, cfg.split_seed)
    validation = (standardize(to_input(images[val_idx])), labels[val_idx])
    return (images[train_idx], labels[train_idx]), validation


def fit(
    cfg: TrainConfig,
    root: Path,
    out: Path,
    *,
    limit: int | None = None,
    epochs: int | None = None,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> dict[str, Any]:
    """Train on `device`, keep the best-on-validation weights in `out`, report on the test set.

    `workers` processes make the augmented batches (0: the training process itself).
    """
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_data, (val_x, val_y) = split(cfg, root, limit)
    val_x, val_y, val_size = val_x.to(device), val_y.to(device), len(val_y)

    model, ema, init_sha256 = start_model(cfg, device)
    teacher = load_teacher(cfg)
    if teacher is not None:
        teacher.to(device)
    n_epochs = epochs or cfg.epochs
    steps = n_epochs * (train_data[0].shape[0] // cfg.batch_size)
    opt = make_optimizer(model, cfg)
    sched = make_schedule(opt, cfg, max(steps, 1))

    checksum = data_checksum(root)
    history: list[dict[str, float]] = []
    best, best_epoch, started = -1.0, 0, time.perf_counter()
    loader, plan = training_batches(train_data, cfg, workers)
    for epoch in range(1, n_epochs + 1):
        plan.deal(gen)
        desc = f"{cfg.arch} {epoch}/{n_epochs}"
        loss = train_epoch(
            model=model,
            ema=ema,
            teacher=teacher,
            batches=loader,
            cfg=cfg,
            opt=opt,
            sched=sched,
            desc=desc,
        )
        scored = ema.module if ema is not None else model
        val_acc = accuracy(scored, val_x, val_y)
        history.append({"epoch": epoch, "train_loss": loss, "val_accuracy": val_acc})
        log.info("epoch %d: loss %.4f, val accuracy %.4f", epoch, loss, val_acc)
        if val_acc > best:
            best, best_epoch = val_acc, epoch
            meta = {"val_accuracy": val_acc, "epoch": epoch, "data_sha256": checksum}
            save_checkpoint(out, scored, cfg.arch, cfg.arch_kwargs, meta)
        elif epoch - best_epoch >= cfg.patience:
            log.info("early stop: no better validation accuracy for %d epochs", cfg.patience)
            break
    train_seconds = time.perf_counter() - started

    model, _ = load_checkpoint(out)
    report = report_on_test_set(model, root)
    report.update(
        best_epoch=best_epoch,
        epochs_run=len(history),
        best_val_accuracy=best,
        history=history,
        training_seconds=round(train_seconds, 1),
        hyperparameters=cfg.to_dict(),
        data_sha256=checksum,
        init_sha256=init_sha256,
        train_images=int(train_data[0].shape[0]),
        device=str(device),
        val_images=int(val_size),
    )
    # The checkpoint carries its own report, so it can be judged without the metrics file.
    save_checkpoint(out, model, cfg.arch, cfg.arch_kwargs, _checkpoint_meta(report))
    write_report(report, out)
    return report


def _checkpoint_meta(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("test_accuracy", "best_val_accuracy", "best_epoch", "data_sha256", "torch_version")
    meta = {k: report[k] for k in keys}
    meta["normalization"] = {"mean": MNIST_MEAN, "std": MNIST_STD}
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=ARCHS, required=True, help="which model to train")
    p.add_argument("--config", type=Path, help="hyperparameter JSON (default: config/<model>_…)")
    p.add_argument("--data-root", help="MNIST root holding MNIST/raw (default: $MNIST_ROOT)")
    p.add_argument("--out", type=Path, help="checkpoint path (default: weights/mnist_<model>.pt)")
    p.add_argument("--epochs", type=int, help="override the configured number of epochs")
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when there is one)"
    )
    p.add_argument(
        "--workers", type=int, default=0, help="processes making augmented batches (default: 0)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="smoke run: 600 images, 1 epoch, temp output"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.load(args.config or default_config_path(args.model))
    if cfg.arch != args.model:
        raise SystemExit(f"--model {args.model} does not match the config's arch {cfg.arch!r}")
    root = resolve_root(args.data_root)
    limit, epochs, out = args.limit, args.epochs, args.out or weights_path(args.model)
    if args.dry_run:
        limit, epochs = limit or 600, epochs or 1
        cfg.distill_from = None
        out = args.out or Path(tempfile.mkdtemp(prefix="mnist-dry-run-")) / f"{args.model}.pt"
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    report = fit(cfg, root, out, limit=limit, epochs=epochs, device=device, workers=args.workers)
    log.info("test accuracy %.4f → %s", report["test_accuracy"], out)


if __name__ == "__main__":
    main()
