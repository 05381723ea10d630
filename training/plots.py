"""Learning curves, confusion matrix and reliability diagram as PNG, for the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_report(report: dict[str, Any], name: str, out_dir: Path) -> list[Path]:
    """Write <name>_curves.png (when there is a history) and <name>_confusion.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    history = report.get("history") or []
    if history:
        epochs = [h["epoch"] for h in history]
        fig, left = plt.subplots(figsize=(6, 3.5))
        left.plot(epochs, [h["train_loss"] for h in history], color="tab:blue")
        left.set_xlabel("epoch")
        left.set_ylabel("training loss", color="tab:blue")
        right = left.twinx()
        right.plot(epochs, [100 * h["val_accuracy"] for h in history], color="tab:orange")
        right.set_ylabel("validation accuracy %", color="tab:orange")
        left.set_title(f"{name}: test accuracy {100 * report['test_accuracy']:.2f} %")
        fig.tight_layout()
        written.append(out_dir / f"{name}_curves.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    cm = report["confusion_matrix"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow([[min(v, 20) for v in row] for row in cm], cmap="Blues")
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name} confusion (10k test)")
    fig.tight_layout()
    written.append(out_dir / f"{name}_confusion.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    if report.get("reliability"):
        ece, temperature = 100 * report["test_ece"], report["temperature"]
        curves = {f"T = {temperature:.2f}": report["reliability"]}
        if report.get("reliability_uncalibrated"):
            curves["T = 1 (uncalibrated)"] = report["reliability_uncalibrated"]
        title = f"{name}: ECE {ece:.2f} % on the 10k test digits"
        written.append(plot_reliability(curves, title, out_dir / f"{name}_reliability.png"))
    return written


def plot_reliability(curves: dict[str, list[dict[str, Any]]], title: str, path: Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per curve."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for label, rows in curves.items():
        filled = [r for r in rows if r["count"]]
        ax.plot(
            [r["confidence"] for r in filled],
            [r["accuracy"] for r in filled],
            marker="o",
            markersize=3,
            label=label,
        )
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
