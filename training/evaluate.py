"""Evaluate a checkpoint on the 10k MNIST test set.

python -m training.evaluate --model cnn                   # weights/mnist_cnn.pt
python -m training.evaluate --weights path.pt --data-root DIR
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recognition.calibration import ece, reliability, softmax
from recognition.catalog import ARCHS
from recognition.constants import NUM_CLASSES
from recognition.models import count_parameters, load_checkpoint
from recognition.preprocessing import standardize
from training.config import REPO_ROOT, weights_path
from training.data import load_split, resolve_root, to_input
from training.plots import plot_report

log = logging.getLogger("training.evaluate")
PLOTS_DIR = REPO_ROOT / "docs" / "img"


@torch.inference_mode()
def model_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Raw logits for standardised inputs, in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out.float()


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes for standardised inputs, in eval mode."""
    return model_logits(model, x, batch_size).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions."""
    return float((predict(model, x) == y).float().mean())


def confusion_matrix(y: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """10×10 counts, rows = true digit, columns = predicted digit."""
    flat = y * NUM_CLASSES + preds
    return torch.bincount(flat, minlength=NUM_CLASSES**2).view(NUM_CLASSES, NUM_CLASSES)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 1.0
) -> dict[str, Any]:
    """Test accuracy, per-class accuracy, confusion matrix, calibration and model facts."""
    logits = model_logits(model, x)
    preds = logits.argmax(1)
    probabilities = softmax(logits.numpy(), temperature)
    cm = confusion_matrix(y, preds)
    per_class = (cm.diag().float() / cm.sum(1).clamp(min=1).float()).tolist()
    return {
        "test_accuracy": int((preds == y).sum()) / len(y),  # exact ratio, no float32 rounding
        "test_images": len(y),
        "per_class_accuracy": [round(a, 4) for a in per_class],
        "confusion_matrix": cm.tolist(),
        "temperature": float(temperature),
        "test_ece": round(ece(probabilities, y.numpy()), 6),
        "mean_confidence": round(float(probabilities.max(1).mean()), 6),
        "reliability": reliability(probabilities, y.numpy()),
        "parameter_count": count_parameters(model),
        "torch_version": str(torch.__version__),  # a plain str loads with weights_only
    }


def report_on_test_set(model: nn.Module, root: Path, temperature: float = 1.0) -> dict[str, Any]:
    """`evaluate` on the 10k MNIST test images under `root`, standardised as in training."""
    x, y = load_split(root, train=False)
    return evaluate(model, standardize(to_input(x)), y, temperature)


def metrics_path(checkpoint: Path) -> Path:
    """weights/mnist_cnn.pt → weights/mnist_cnn.metrics.json."""
    return checkpoint.with_suffix(".metrics.json")


def write_report(report: dict[str, Any], checkpoint: Path) -> None:
    """Metrics JSON beside the checkpoint; plots under docs/img for committed weights."""
    metrics_path(checkpoint).write_text(json.dumps(report, indent=2) + "\n")
    plots_dir = PLOTS_DIR if checkpoint.parent == weights_path("cnn").parent else checkpoint.parent
    plot_report(report, checkpoint.stem, plots_dir)


def main(argv: list[str] | None = None) -> None:
    """Entry point: print the test accuracy and per-class accuracy."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=ARCHS, help="evaluate weights/mnist_<model>.pt")
    p.add_argument("--weights", type=Path, help="checkpoint path (overrides --model)")
    p.add_argument("--data-root", help="MNIST root holding MNIST/raw (default: $MNIST_ROOT)")
    args = p.parse_args(argv)
    if not (args.model or args.weights):
        p.error("give --model or --weights")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, meta = load_checkpoint(args.weights or weights_path(args.model))
    report = report_on_test_set(
        model, resolve_root(args.data_root), float(meta.get("temperature", 1.0))
    )
    accuracy = f"test accuracy {report['test_accuracy']:.4f} on {report['test_images']} images"
    print(f"{meta['arch']}: {accuracy}")
    print(
        f"ECE (15 bins) {100 * report['test_ece']:.2f} % at temperature {report['temperature']:.3f}"
    )
    print(
        "per class:", " ".join(f"{d}:{a:.4f}" for d, a in enumerate(report["per_class_accuracy"]))
    )


if __name__ == "__main__":
    main()
