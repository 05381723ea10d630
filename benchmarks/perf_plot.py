"""The benchmark's plot: latency percentiles and throughput per input, target and client count."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

STYLES = {
    "inproc_both": ("in-process, both models (a)", "tab:gray", "-"),
    "inproc_mlp": ("in-process MLP (a)", "tab:gray", ":"),
    "inproc_cnn": ("in-process CNN (a)", "tab:gray", "--"),
    "ts_mlp": ("TorchServe mnist_mlp (b)", "tab:blue", ":"),
    "ts_cnn": ("TorchServe mnist_cnn (b)", "tab:blue", "--"),
    "ui": ("/api/predict end to end (c)", "tab:red", "-"),
}


def plot(report: Mapping[str, Any], path: Path) -> Path:
    """Write a PNG: per input, p50 latency (band to p99) and req/s against client count."""
    import matplotlib  # lazy: heavy, and only bench mode draws a plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    inputs = list(results)
    fig, axes = plt.subplots(2, len(inputs), figsize=(5 * len(inputs), 8), squeeze=False)
    for col, name in enumerate(inputs):
        lat, rps = axes[0][col], axes[1][col]
        for target, cells in results[name].items():
            label, colour, line = STYLES.get(target, (target, None, "-"))
            clients = sorted(cells, key=int)
            xs = [int(c) for c in clients]
            p50 = [cells[c]["p50_ms"] for c in clients]
            p99 = [cells[c]["p99_ms"] for c in clients]
            lat.plot(xs, p50, line, color=colour, marker="o", label=label)
            lat.fill_between(xs, p50, p99, color=colour, alpha=0.12)
            rps.plot(xs, [cells[c]["rps"] for c in clients], line, color=colour, marker="o")
        lat.set_title(f"{name}: p50 latency (band to p99)")
        rps.set_title(f"{name}: throughput")
        for ax in (lat, rps):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent clients")
            ax.grid(True, which="both", alpha=0.3)
        lat.set_yscale("log")
        lat.set_ylabel("ms")
        rps.set_ylabel("requests / s")
    axes[0][0].legend(fontsize=8)
    machine = report.get("machine", {})
    fig.suptitle(
        f"mnist-serve latency and throughput on {machine.get('cpu', '?')} "
        f"({machine.get('cores', '?')} cores)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
