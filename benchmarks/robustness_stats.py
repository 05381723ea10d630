"""What a path answered for the evaluation sets: accuracy, refusals, timings, mistakes."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.perf_stats import percentile
from evalsets.read import Sample
from recognition.calibration import ece


@dataclass
class Outcome:
    """What one path answered for one file: a digit per model, or the HTTP status of a refusal."""

    predictions: dict[str, int | None]
    status: int = 200
    error: str | None = None
    preprocess_ms: float | None = None
    # in-process only: each model's calibrated distribution and whether it would abstain
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    abstained: dict[str, bool] = field(default_factory=dict)


def accuracy(samples: Sequence[Sample], outcomes: Sequence[Outcome], model: str) -> float:
    """Share of files whose answer for `model` is the label (refusals count as wrong)."""
    right = sum(o.predictions.get(model) == s.label for s, o in zip(samples, outcomes, strict=True))
    return right / max(len(samples), 1)


def honesty(
    samples: Sequence[Sample], outcomes: Sequence[Outcome], model: str
) -> dict[str, float] | None:
    """On the files read (not refused): the model's ECE (15 bins), the share it abstains on,
    and the share of those it reads right that it abstains on; None without probabilities."""
    read = [(s, o) for s, o in zip(samples, outcomes, strict=True) if model in o.probabilities]
    if not read:
        return None
    probs = np.stack([o.probabilities[model] for _, o in read])
    labels = np.array([s.label for s, _ in read])
    abstained = np.array([o.abstained.get(model, False) for _, o in read])
    right = probs.argmax(axis=1) == labels
    return {
        "ece": round(ece(probs, labels), 4),
        "abstained": round(float(abstained.mean()), 4),
        "abstained_when_right": round(float(abstained[right].mean()) if right.any() else 0.0, 4),
    }


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50, p95 and max of some timings (ms)."""
    ordered = sorted(values)
    if not ordered:
        return {}
    p50, p95 = (round(percentile(ordered, q) or 0.0, 2) for q in (50, 95))
    return {"p50": p50, "p95": p95, "max": round(ordered[-1], 2)}


def by_tag(
    samples: Sequence[Sample], outcomes: Sequence[Outcome], models: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Accuracy per model for every tag value: {key: {value: {n, model: accuracy}}}."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        for key, value in sample.tags.items():
            groups[key, value].append(i)
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (key, value), idx in sorted(groups.items()):
        sub_s = [samples[i] for i in idx]
        sub_o = [outcomes[i] for i in idx]
        row: dict[str, float] = {"n": len(idx)}
        row.update({m: round(accuracy(sub_s, sub_o, m), 4) for m in models})
        table[key][value] = row
    return dict(table)


def summarize(
    samples: Sequence[Sample], outcomes: Sequence[Outcome], models: Sequence[str]
) -> dict[str, Any]:
    """Accuracy per model, refusals by status, timings and tag breakdown of one set on one path."""
    refused: dict[str, int] = defaultdict(int)
    for o in outcomes:
        if o.status != 200:
            refused[str(o.status)] += 1
    summary: dict[str, Any] = {
        "n": len(samples),
        "accuracy": {m: round(accuracy(samples, outcomes, m), 4) for m in models},
        "refused": dict(refused),
    }
    times = [o.preprocess_ms for o in outcomes if o.preprocess_ms is not None]
    if times:
        summary["preprocess_ms"] = percentiles(times)
    calibrated = {m: honesty(samples, outcomes, m) for m in models}
    if any(calibrated.values()):
        summary["honesty"] = {m: h for m, h in calibrated.items() if h}
    summary["by_tag"] = by_tag(samples, outcomes, models)
    return summary


def honesty_table(results: dict[str, dict[str, Any]], models: Sequence[str]) -> str:
    """ECE and abstention (%) per set and model: "ECE / abstained / abstained when right"."""
    head = f"{'set':<11}" + "".join(f"{m:>22}" for m in models)
    lines = ["ECE / abstained / of the right ones (%)", head, "-" * len(head)]
    for name, summary in results.items():
        cells = summary.get("honesty", {})
        row = "".join(
            f"{'-':>22}"
            if m not in cells
            else f"{100 * cells[m]['ece']:>8.2f} /{100 * cells[m]['abstained']:>5.1f} /"
            f"{100 * cells[m]['abstained_when_right']:>5.1f}"
            for m in models
        )
        lines.append(f"{name:<11}{row}")
    return "\n".join(lines)


def table(title: str, results: dict[str, dict[str, Any]], models: Sequence[str]) -> str:
    """A plain-text table of accuracy (%) per set and model, with refusals and timing."""
    head = f"{'set':<11}{'n':>6}" + "".join(f"{m:>12}" for m in models)
    head += f"{'refused':>9}{'pre p50/p95 ms':>18}"
    lines = [title, head, "-" * len(head)]
    for name, summary in results.items():
        accs = "".join(f"{100 * summary['accuracy'].get(m, 0):>11.2f}%" for m in models)
        refused = sum(summary["refused"].values())
        t = summary.get("preprocess_ms")
        timing = f"{t['p50']:.2f} / {t['p95']:.2f}" if t else "-"
        lines.append(f"{name:<11}{summary['n']:>6}{accs}{refused:>9}{timing:>18}")
    return "\n".join(lines)


def mistakes(samples: Sequence[Sample], outcomes: Sequence[Outcome], model: str) -> list[dict]:
    """The files `model` got wrong, with its answer (or the refusal) and the tags."""
    wrong = []
    for s, o in zip(samples, outcomes, strict=True):
        answer = o.predictions.get(model)
        if answer != s.label:
            entry = {"file": s.path.name, "label": s.label, "predicted": answer, **s.tags}
            if o.status != 200:
                entry["status"], entry["error"] = o.status, o.error
            wrong.append(entry)
    return wrong


def jpeg_timing(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Preprocessing time of the 1600×1200 phone JPEGs (the issue's speed target)."""
    return percentiles(
        o.preprocess_ms
        for s, o in zip(samples, outcomes, strict=True)
        if s.tags.get("frame") in {"1600x1200", "1200x1600"} and o.preprocess_ms is not None
    )


def failures(
    set_name: str, samples: Sequence[Sample], outcomes: Sequence[Outcome], models: Sequence[str]
) -> list[dict[str, Any]]:
    """The files refused, or misread by any model: set, file, label, status, error, each
    model's answer and the tags."""
    rows = []
    for s, o in zip(samples, outcomes, strict=True):
        answers = {m: o.predictions.get(m) for m in models}
        if o.status == 200 and all(a == s.label for a in answers.values()):
            continue
        tags = " ".join(f"{k}={v}" for k, v in s.tags.items())
        row = {"set": set_name, "file": s.path.name, "label": s.label, "status": o.status}
        rows.append({**row, "error": o.error or "", **answers, "tags": tags})
    return rows


def write_failures(path: Path, rows: Sequence[dict[str, Any]], models: Sequence[str]) -> None:
    """The rows of `failures` as a CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["set", "file", "label", "status", "error", *models, "tags"])
        writer.writeheader()
        writer.writerows(rows)
