"""Calibrate both committed models and fit the ensemble, on the validation split only.

    python -m training.calibrate                      # fit, rewrite weights/*.pt meta, report
    python -m training.calibrate --dry-run            # fit and print, write nothing

Per model, a softmax temperature T minimises the validation NLL of logits / T (LBFGS on log T);
it goes into the checkpoint's meta["temperature"] with meta["calibration"] (validation ECE and
NLL before/after); the weights are not touched. The ensemble is the weighted log-linear pool
p ∝ exp(Σ_m w_m log p_m) of the calibrated distributions; w is chosen on a grid to minimise
the validation NLL among the weightings at least as accurate as the best single model on the
validation digits and on the same digits once distorted as in training (other writers'
styles, strokes, blur, low resolution), and written to config/ensemble.json.

Abstention thresholds are fitted on the validation digits too, for at most 1 % abstained: per
model (meta["abstention"]: the evidence score log Σ exp(logit), half the budget, and the
calibrated confidence, the other half) and for the pool (its minimum confidence, in
config/ensemble.json). Generated non-digits are scored: validation ones ("train" family, a seed
the fine-tune never saw) and held-out ones (other letters, shapes, fonts, pens; never fitted
on). The validation split is the training runs' own
(train_val_split(60000, val_size, split_seed) of config/<model>_best_hyperparams.json), images the
models never trained on. The 10k test set is only scored, for the printed report, the metrics
JSON and the reliability diagrams under docs/img/.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recognition.abstention import Thresholds
from recognition.calibration import ece, log_softmax, nll, pool, reliability, softmax
from recognition.catalog import ARCHS
from recognition.models import load_checkpoint, update_meta
from recognition.preprocessing import standardize
from recognition.voters import voters
from training import abstain
from training.augment import AugmentConfig, augment_batch
from training.config import CONFIG_DIR, TrainConfig, default_config_path, weights_path
from training.data import load_split, resolve_root, to_input, train_val_split
from training.evaluate import PLOTS_DIR, evaluate, metrics_path, model_logits, write_report
from training.nondigits import cached
from training.plots import plot_reliability

log = logging.getLogger("training.calibrate")
ENSEMBLE_FILE = CONFIG_DIR / "ensemble.json"
POOL_RULE = "p ∝ exp(Σ_m w_m · log p_m), p_m = softmax(logits_m / T_m)"
DISTORT_SEED = 21  # the validation digits' one distorted copy
BATCH = 1000


@dataclass
class Scored:
    """One model's raw logits on the validation and test digits and on generated non-digits."""

    arch: str
    val: np.ndarray
    val_distorted: np.ndarray  # the validation digits once distorted as in training
    test: np.ndarray
    val_other: np.ndarray  # validation non-digits (threshold fitting)
    heldout: np.ndarray  # held-out non-digits (report only)


def validation_indices(archs: tuple[str, ...] = ARCHS, n: int = 60_000) -> torch.Tensor:
    """The validation indices every model's training run held out (they must agree)."""
    splits = []
    for arch in archs:
        cfg = TrainConfig.load(default_config_path(arch))
        splits.append(train_val_split(n, cfg.val_size, cfg.split_seed)[1])
    if any(not torch.equal(splits[0], s) for s in splits[1:]):
        raise ValueError("the models were validated on different splits: no common set to fit on")
    return splits[0]


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) (LBFGS on log T)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def calibration_stats(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE and NLL of these logits before (T = 1) and after the temperature."""
    before, after = log_softmax(logits), log_softmax(logits, temperature)
    return {
        "ece_before": round(ece(np.exp(before), labels), 6),
        "ece_after": round(ece(np.exp(after), labels), 6),
        "nll_before": round(nll(before, labels), 6),
        "nll_after": round(nll(after, labels), 6),
    }


def accuracy_of(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose arg-max is the label."""
    return float((log_probs.argmax(axis=1) == labels).mean())


View = tuple[dict[str, np.ndarray], np.ndarray]  # per-model log-probabilities, labels


def fit_pool_weights(
    views: Sequence[View], step: float = 0.05, top: float = 2.0
) -> dict[str, float]:
    """Grid weights minimising the pool's NLL on the first view among those at least as
    accurate as every single model on every view (when none is, those that fall least short
    of it on their worst view)."""
    floors = [
        max(accuracy_of(lp, labels) for lp in by_model.values()) for by_model, labels in views
    ]
    names = list(views[0][0])
    grid = np.round(np.arange(0.0, top + step / 2, step), 6)
    best: tuple[float, float, tuple[float, ...]] = (np.inf, np.inf, ())
    for weights in product(grid, repeat=len(names)):
        if not any(weights):
            continue
        pooled = [pool([by_model[n] for n in names], weights) for by_model, _ in views]
        short = max(
            floor - accuracy_of(p, labels)
            for p, (_, labels), floor in zip(pooled, views, floors, strict=True)
        )
        loss = nll(pooled[0], views[0][1])
        best = min(best, (max(short, 0.0), loss, tuple(float(w) for w in weights)))
    return dict(zip(names, best[2], strict=True))


def distorted(clean: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Every image of `clean` (N×1×28×28 in [0, 1]) distorted once as in training (the CNN's
    augmentation, applied to all); labels −1 mark non-digits."""
    cfg = AugmentConfig(**{**TrainConfig.load(default_config_path("cnn")).augment, "p": 1.0})
    return torch.cat(
        [
            augment_batch(clean[i : i + BATCH], cfg, gen, labels[i : i + BATCH])
            for i in range(0, len(clean), BATCH)
        ]
    )


def score_models(
    root: Path, val_idx: torch.Tensor, n_other: int
) -> tuple[dict[str, Scored], dict[str, Any]]:
    """Raw logits of each committed model on every evaluation set, and the digit labels."""
    images, labels = load_split(root, train=True)
    test_x, test_y = load_split(root, train=False)
    val_clean = to_input(images[val_idx])
    val_x = standardize(val_clean)
    gen = torch.Generator().manual_seed(DISTORT_SEED)
    val_distorted = standardize(distorted(val_clean, labels[val_idx], gen))
    others = {
        "val_other": cached("train", n_other, abstain.VAL_SEED),
        "heldout": cached("heldout", n_other, abstain.HELDOUT_SEED),
    }
    others = {k: standardize(torch.from_numpy(v).unsqueeze(1)) for k, v in others.items()}
    scored = {}
    for arch in ARCHS:
        model, _ = load_checkpoint(weights_path(arch))
        run = {"val": val_x, "val_distorted": val_distorted, "test": standardize(to_input(test_x))}
        z = {k: model_logits(model, x).numpy() for k, x in {**run, **others}.items()}
        scored[arch] = Scored(**z, arch=arch)
    val_y = labels[val_idx].numpy()
    data = {"val_y": val_y, "val_distorted_y": val_y, "test_y": test_y.numpy(), "test_x": test_x}
    return scored, data


SETS = {
    "val": "validation digits",
    "test": "test digits",
    "val_other": "validation non-digits",
    "heldout": "held-out non-digits",
}


def _ensemble_inputs(
    scored: dict[str, Scored], temps: dict, weights: dict, thresholds: dict, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """The pool's distribution on one set, and where every model it listens to says "not a
    digit"."""
    logits = [getattr(scored[a], split) for a in weights]
    probs = abstain.pooled(logits, [temps[a] for a in weights], list(weights.values()))
    flags = [
        abstain.not_a_digit(getattr(scored[a], split), temps[a], thresholds[a])
        for a in voters(weights)
    ]
    return probs, np.all(flags, axis=0)


def fit_abstention(
    scored: dict[str, Scored], temps: dict[str, float], weights: dict[str, float]
) -> tuple[dict[str, Thresholds], float, dict[str, dict[str, float]]]:
    """Per-model thresholds, the pool's minimum confidence, and abstention rates on every set."""
    thresholds = {a: abstain.fit_model(s.val, temps[a]) for a, s in scored.items()}
    rates = {
        a: {k: abstain.model_rate(getattr(s, k), temps[a], thresholds[a]) for k in SETS}
        for a, s in scored.items()
    }
    min_conf = abstain.fit_ensemble(*_ensemble_inputs(scored, temps, weights, thresholds, "val"))
    rates["ensemble"] = {
        k: float(
            abstain.ensemble_abstained(
                *_ensemble_inputs(scored, temps, weights, thresholds, k), min_conf
            ).mean()
        )
        for k in SETS
    }
    return thresholds, min_conf, rates


def write_model(arch: str, temperature: float, calibration: dict, data: dict, extra: dict) -> dict:
    """Rewrite one checkpoint's meta and its metrics JSON (with reliability) and plots."""
    path = weights_path(arch)
    update_meta(path, {"temperature": temperature, "calibration": calibration, **extra})
    model, _ = load_checkpoint(path)
    x = standardize(to_input(data["test_x"]))
    report = json.loads(metrics_path(path).read_text()) if metrics_path(path).is_file() else {}
    report.update(evaluate(model, x, torch.as_tensor(data["test_y"]), temperature))
    report["reliability_uncalibrated"] = evaluate(model, x, torch.as_tensor(data["test_y"]))[
        "reliability"
    ]
    report["calibration"] = calibration
    report.update(extra)
    update_meta(path, {"test_accuracy": report["test_accuracy"]})  # the checkpoint's own record
    write_report(report, path)
    return report


def ensemble_summary(
    scored: dict[str, Scored], temps: dict[str, float], weights: dict[str, float], data: dict
) -> dict[str, Any]:
    """Accuracy and ECE of the mean ensemble, the fitted pool and each model, both splits."""
    out: dict[str, Any] = {}
    for split in ("val", "val_distorted", "test"):
        labels = data[f"{split}_y"]
        calibrated = {a: log_softmax(getattr(s, split), temps[a]) for a, s in scored.items()}
        mean = np.mean([softmax(getattr(s, split)) for s in scored.values()], axis=0)
        pooled = pool([calibrated[a] for a in weights], list(weights.values()))
        rows = {"mean (uncalibrated, before)": np.log(mean), "pool": pooled, **calibrated}
        out[split] = {
            name: {"accuracy": accuracy_of(lp, labels), "ece": ece(np.exp(lp), labels)}
            for name, lp in rows.items()
        }
        out[f"{split}_reliability"] = reliability(np.exp(pooled), labels)
        out[f"{split}_reliability_mean"] = reliability(mean, labels)
    return out


def write_ensemble(
    weights: dict[str, float], summary: dict[str, Any], abstention: dict, path: Path
) -> None:
    """config/ensemble.json (what the web UI reads) and the ensemble's reliability diagram."""
    doc = {
        "rule": POOL_RULE,
        "weights": weights,
        "abstention": abstention,
        "fitted_on": "validation split (5000 training images held out by both training runs)",
        "validation": summary["val"],
        "validation_distorted": summary["val_distorted"],
        "test": summary["test"],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    curves = {"log-linear pool": summary["test_reliability"]}
    curves["mean (before)"] = summary["test_reliability_mean"]
    ece_test = 100 * summary["test"]["pool"]["ece"]
    title = f"ensemble: ECE {ece_test:.2f} % on the 10k test digits"
    plot_reliability(curves, title, PLOTS_DIR / "ensemble_reliability.png")


def print_report(calibrations: dict[str, dict], summary: dict[str, Any], temps: dict) -> None:
    """The CLI's result: temperatures, ECE before/after, ensemble accuracy and ECE."""
    for arch, cal in calibrations.items():
        print(
            f"{arch}: T = {temps[arch]:.4f}; validation ECE {100 * cal['ece_before']:.2f} % → "
            f"{100 * cal['ece_after']:.2f} %"
        )
    for split in ("val", "val_distorted", "test"):
        for name, row in summary[split].items():
            print(
                f"  {split:13s} {name:28s} accuracy {100 * row['accuracy']:.2f} %  "
                f"ECE {100 * row['ece']:.2f} %"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-root", help="MNIST root holding MNIST/raw (default: $MNIST_ROOT)")
    p.add_argument(
        "--ensemble", type=Path, default=ENSEMBLE_FILE, help="ensemble file (default: %(default)s)"
    )
    p.add_argument("--grid-step", type=float, default=0.05, help="weight grid step (%(default)s)")
    p.add_argument("--grid-max", type=float, default=2.0, help="largest weight (%(default)s)")
    p.add_argument("--n-other", type=int, default=2000, help="non-digits per set (%(default)s)")
    p.add_argument("--dry-run", action="store_true", help="fit and print; write nothing")
    return p.parse_args(argv)


def print_abstention(rates: dict[str, dict[str, float]]) -> None:
    """The CLI's abstention result: the share abstained on, per model and set."""
    for name, row in rates.items():
        shares = ", ".join(f"{SETS[k]} {100 * v:.2f} %" for k, v in row.items())
        print(f"abstained, {name}: {shares}")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    root = resolve_root(args.data_root)
    scored, data = score_models(root, validation_indices(), args.n_other)
    temps = {a: fit_temperature(s.val, data["val_y"]) for a, s in scored.items()}
    calibrations = {a: calibration_stats(s.val, data["val_y"], temps[a]) for a, s in scored.items()}
    views = [
        ({a: log_softmax(getattr(s, split), temps[a]) for a, s in scored.items()}, data["val_y"])
        for split in ("val", "val_distorted")
    ]
    weights = fit_pool_weights(views, args.grid_step, args.grid_max)
    log.info("pool weights %s", weights)
    summary = ensemble_summary(scored, temps, weights, data)
    thresholds, min_conf, rates = fit_abstention(scored, temps, weights)
    if not args.dry_run:
        for arch in scored:
            extra = {"abstention": {**thresholds[arch].to_dict(), "rates": rates[arch]}}
            write_model(arch, temps[arch], calibrations[arch], data, extra)
        ens = {**abstain.ensemble_config(min_conf), "rates": rates["ensemble"]}
        write_ensemble(weights, summary, ens, args.ensemble)
    print_report(calibrations, summary, temps)
    print("ensemble weights:", ", ".join(f"{a} {w:.2f}" for a, w in weights.items()))
    print_abstention(rates)


if __name__ == "__main__":
    main()
