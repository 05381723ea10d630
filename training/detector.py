"""Fit each model's digit detector and write it, with refitted thresholds, into its checkpoint.

The detector (recognition.abstention.Detector) is a class-balanced, L2-regularised logistic
score over a frozen model's penultimate features, logits, evidence and familiarity: the cosine
similarity of the image's probe to the nearest digit of a memory (recognition.abstention.Memory)
of MEMORY training digits, clean and augmented, that the detector's own digits are not among.
It learns from training digits (never the validation split) against generated non-digits of
training.nondigits' "train" family (the outlier-exposure seed), both clean and as augmented in
training: were only the digits augmented, thick or blurred strokes would pass for digit
evidence. Then, on the validation digits, the false-abstention budget (1 % less one standard
error, `abstain.margined`) is shared: half for the evidence and confidence thresholds, half for
the detector's minimum score. The "dev" family is where
designs of the detector are compared; the held-out family is only scored. A second logistic
score of the same inputs, training digits against merged pairs of them (training.pairs), tells
the line reader one digit from two touching (`Thresholds.single`). Run after
`training.calibrate`, which writes thresholds without a detector; `--refit mlp` refits the
MLP's detector alone (after a retrain of the MLP), a bare `--refit` keeps every checkpoint's
detector and refits only the pool's minimum confidence (after a change of the pool's weights),
and `--single-only` fits only the single-digit scores (after a change of training.pairs).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recognition.abstention import (
    Detector,
    Memory,
    Thresholds,
    abstained,
    detector_inputs,
    evidence,
    unit_rows,
)
from recognition.calibration import softmax
from recognition.catalog import ARCHS
from recognition.models import load_checkpoint, update_meta
from recognition.preprocessing import standardize
from recognition.voters import voters
from training import abstain
from training.calibrate import ENSEMBLE_FILE, SETS, distorted, validation_indices
from training.config import weights_path
from training.data import load_split, resolve_root, to_input
from training.evaluate import metrics_path
from training.nondigits import cached
from training.pairs import merged_pairs

log = logging.getLogger(__name__)

DIGITS = 12_000  # training digits the detector sees, each also once augmented
NON_DIGITS = 18_000  # "train"-family non-digits it sees, each also once augmented
PAIRS = 12_000  # merged pairs of training digits (training.pairs) the single-digit score sees…
PAIR_SEED = 13  # …each also once augmented
MEMORY = 8_000  # training digits the memory holds, each also once augmented…
MEMORY_WIDTH = 128  # …projected on this many principal directions of their probes
TRAIN_SEED = 11  # the outlier-exposure fine-tune's non-digit seed (training.outlier)
SAMPLE_SEED = 5
L2 = 1e-3
REPORTED = {**SETS, "dev": "dev-family non-digits"}
BATCH = 1000


Embedded = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def embed(model: nn.Module, x: torch.Tensor) -> Embedded:
    """Penultimate features, logits and probes (None: the model has none) of [0, 1] images
    (N×1×28×28), in batches."""
    parts: list[list[torch.Tensor]] = [[], [], []]
    with torch.inference_mode():
        for i in range(0, len(x), BATCH):
            for part, t in zip(parts, model.embed(standardize(x[i : i + BATCH])), strict=True):
                if t is not None:
                    part.append(t.float())
    features, logits, probe = (torch.cat(part).numpy() if part else None for part in parts)
    return features, logits, probe


def fit_logistic(x: np.ndarray, positive: np.ndarray, l2: float = L2) -> tuple[np.ndarray, ...]:
    """(center, scale, weights, bias) of a class-balanced logistic regression (LBFGS)."""
    center, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.tensor((x - center) / scale, dtype=torch.float64)
    yt = torch.tensor(positive, dtype=torch.float64)
    balance = torch.where(yt > 0, float((~positive).sum() / positive.sum()), 1.0)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, weight=balance)
        loss = loss + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return center, scale, w.detach().numpy(), b.detach().numpy()


def with_augmented(clean: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """`clean` images followed by each once as augmented in training (labels −1: non-digits)."""
    return torch.cat([clean, distorted(clean, labels, gen)])


def outside_validation(count: int, val: torch.Tensor) -> torch.Tensor:
    """Boolean mask over `count` training images: those not in the validation split `val`."""
    keep = torch.ones(count, dtype=torch.bool)
    keep[val] = False
    return keep


def training_digits(
    images: torch.Tensor, labels: torch.Tensor, val: torch.Tensor, remember: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """DIGITS training images outside the validation split, clean and augmented (2·DIGITS), and
    (`remember`) MEMORY others, clean and augmented (2·MEMORY), for the memory."""
    gen = torch.Generator().manual_seed(SAMPLE_SEED)
    pool = outside_validation(len(images), val).nonzero().flatten()
    order = pool[torch.randperm(len(pool), generator=gen)]
    picked, remembered = order[:DIGITS], order[DIGITS : DIGITS + MEMORY]
    digits = with_augmented(to_input(images[picked]), labels[picked], gen)
    if not remember:
        return digits, None
    return digits, with_augmented(to_input(images[remembered]), labels[remembered], gen)


def fit_memory(probe: np.ndarray, width: int = MEMORY_WIDTH) -> Memory:
    """A memory of these probes, projected on their `width` leading principal directions
    (uncentred: the cosine compares directions from the origin)."""
    _, _, directions = np.linalg.svd(unit_rows(probe), full_matrices=False)
    basis = directions[:width].T
    return Memory(basis, probe @ basis)


def training_non_digits() -> torch.Tensor:
    """NON_DIGITS "train"-family non-digits, clean and augmented (2·NON_DIGITS)."""
    clean = torch.from_numpy(cached("train", NON_DIGITS, TRAIN_SEED)).unsqueeze(1)
    gen = torch.Generator().manual_seed(SAMPLE_SEED + 1)
    return with_augmented(clean, torch.full((len(clean),), -1), gen)


def training_pairs(images: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """PAIRS merged pairs of training digits outside the validation split, clean and augmented
    (2·PAIRS)."""
    keep = outside_validation(len(images), val)
    clean = torch.from_numpy(merged_pairs(images[keep].numpy(), PAIRS, PAIR_SEED)).unsqueeze(1)
    gen = torch.Generator().manual_seed(SAMPLE_SEED + 2)
    return with_augmented(clean, torch.full((len(clean),), -1), gen)


def fit_detector(positive: np.ndarray, negative: np.ndarray, familiar: bool = False) -> Detector:
    """A logistic score of `detector_inputs` rows, `positive` against `negative` (min_score 0);
    `familiar`: the rows end with the familiarity column."""
    x = np.concatenate([positive, negative])
    is_positive = np.r_[np.ones(len(positive), bool), np.zeros(len(negative), bool)]
    center, scale, weights, bias = fit_logistic(x, is_positive)
    vectors = (tuple(float(v) for v in a) for a in (center, scale, weights))
    return Detector(*vectors, bias=float(bias[0]), min_score=0.0, familiar=familiar)


def fit_model(
    model: nn.Module,
    temperature: float,
    examples: dict[str, torch.Tensor],
    val: torch.Tensor,
) -> Thresholds:
    """A model's thresholds with its memory, detector and single-digit score, from training
    `examples` ("digits", "remembered", "non_digits", "pairs") and validation digits."""
    embedded = {k: embed(model, x) for k, x in examples.items()}
    remembered = embedded.pop("remembered")[2]
    memory = None if remembered is None else fit_memory(remembered)
    familiar = memory is not None

    def inputs(name: str, familiar: bool) -> np.ndarray:
        features, logits, probe = embedded[name]
        return detector_inputs(features, logits, memory.familiarity(probe) if familiar else None)

    detector = fit_detector(inputs("digits", familiar), inputs("non_digits", familiar), familiar)
    single = fit_detector(inputs("digits", False), inputs("pairs", False))
    f_val, z_val, p_val = embed(model, val)
    half = abstain.margined(abstain.FALSE_RATE, len(val)) / 2
    base = abstain.fit_model(z_val, temperature, half)
    scores = detector.score(f_val, z_val, memory.familiarity(p_val) if familiar else None)
    detector = replace(detector, min_score=float(np.quantile(scores, half)))
    return replace(base, detector=detector, single=single, memory=memory)


@dataclass
class Judged:
    """One model's calibrated distribution and "not a digit" flags on one set."""

    probabilities: np.ndarray
    not_a_digit: np.ndarray
    abstained: np.ndarray


def judge(model: nn.Module, temperature: float, thresholds: Thresholds, x: torch.Tensor) -> Judged:
    """What the handler would say about each image of `x`."""
    features, logits, probe = embed(model, x)
    digit = thresholds.looks_like_a_digit(features, logits, thresholds.familiarity(probe))
    probs = softmax(logits, temperature)
    flags = abstain.not_a_digit(logits, temperature, thresholds, digit)
    return Judged(probs, flags, abstained(probs, evidence(logits), thresholds, digit))


def refit_ensemble(judged: dict[str, dict[str, Judged]], path: Path) -> dict[str, float]:
    """Refit the pool's minimum confidence in config/ensemble.json on the validation digits
    (the models' new flags change how many the "every model the pool listens to says not a
    digit" rule takes);
    returns the ensemble's abstention rates per set."""
    doc = json.loads(path.read_text())
    weights = doc["weights"]

    def inputs(name: str) -> tuple[np.ndarray, np.ndarray]:
        probabilities = [judged[a][name].probabilities for a in weights]
        flags = np.all([judged[a][name].not_a_digit for a in voters(weights)], axis=0)
        return abstain.pooled_probabilities(probabilities, list(weights.values())), flags

    min_conf = abstain.fit_ensemble(*inputs("val"))
    shares = {k: float(abstain.ensemble_abstained(*inputs(k), min_conf).mean()) for k in REPORTED}
    doc["abstention"] = {**abstain.ensemble_config(min_conf), "rates": shares}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return shares


def write_abstention(path: Path, entry: dict[str, Any]) -> None:
    """The abstention entry into the checkpoint's meta and its metrics JSON (if there is one;
    there the memory is summarised by its size)."""
    update_meta(path, {"abstention": entry})
    report_file = metrics_path(path)
    if report_file.is_file():
        doc = json.loads(report_file.read_text())
        memory = entry.get("memory")
        if memory is not None:
            memory = {"digits": len(memory["bank"]), "width": int(memory["basis"].shape[1])}
        doc["abstention"] = {**entry, "memory": memory} if memory else entry
        report_file.write_text(json.dumps(doc, indent=2) + "\n")


def report(name: str, shares: dict[str, float]) -> None:
    """One line of abstention rates per set."""
    print(f"abstained, {name}: " + ", ".join(f"{REPORTED[k]} {v:.2%}" for k, v in shares.items()))


def refit_single(
    images: torch.Tensor, labels: torch.Tensor, val: torch.Tensor, dry_run: bool
) -> None:
    """Fit each checkpoint's single-digit score and write it beside its kept thresholds."""
    examples = {
        "digits": training_digits(images, labels, val, remember=False)[0],
        "pairs": training_pairs(images, val),
    }
    for arch in ARCHS:
        path = weights_path(arch)
        model, meta = load_checkpoint(path)
        thresholds = Thresholds.from_meta(meta)
        if thresholds is None or thresholds.detector is None:
            raise SystemExit(f"{path} has no detector: run a full refit first")
        inputs = {k: detector_inputs(*embed(model, x)[:2]) for k, x in examples.items()}
        single = fit_detector(inputs["digits"], inputs["pairs"])
        log.info("%s: single-digit score fitted", arch)
        if not dry_run:
            entry = {**meta["abstention"], **replace(thresholds, single=single).to_dict()}
            write_abstention(path, entry)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", help="MNIST root holding MNIST/raw (default: $MNIST_ROOT)")
    p.add_argument(
        "--ensemble", type=Path, default=ENSEMBLE_FILE, help="ensemble file (default: %(default)s)"
    )
    p.add_argument("--dry-run", action="store_true", help="fit and print; write nothing")
    p.add_argument(
        "--single-only",
        action="store_true",
        help="fit only the single-digit scores; keep every detector and threshold",
    )
    p.add_argument(
        "--refit",
        nargs="*",
        choices=ARCHS,
        default=list(ARCHS),
        help="the models whose detector is refitted (default: all; none: only the pool's)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.manual_seed(0)
    root = resolve_root(args.data_root)
    images, labels = load_split(root, train=True)
    val_idx = validation_indices()
    if args.single_only:  # no thresholds are refitted: no validation or reported sets needed
        refit_single(images, labels, val_idx, args.dry_run)
        return
    test_x, _ = load_split(root, train=False)
    val = to_input(images[val_idx])
    if args.refit:
        digits, remembered = training_digits(images, labels, val_idx)
        examples = {
            "digits": digits,
            "remembered": remembered,
            "non_digits": training_non_digits(),
            "pairs": training_pairs(images, val_idx),
        }
    sets = {
        "val": val,
        "test": to_input(test_x),
        "val_other": torch.from_numpy(cached("train", 2000, abstain.VAL_SEED)).unsqueeze(1),
        "heldout": torch.from_numpy(cached("heldout", 2000, abstain.HELDOUT_SEED)).unsqueeze(1),
        "dev": torch.from_numpy(cached("dev", 2000, abstain.DEV_SEED)).unsqueeze(1),
    }
    judged = {}
    for arch in ARCHS:
        path = weights_path(arch)
        model, meta = load_checkpoint(path)
        temperature = float(meta["temperature"])
        if arch in args.refit:
            thresholds = fit_model(model, temperature, examples, val)
        else:
            thresholds = Thresholds.from_meta(meta)
            if thresholds is None or thresholds.detector is None:
                raise SystemExit(f"{path} has no detector to keep: refit it (--refit {arch})")
        judged[arch] = {k: judge(model, temperature, thresholds, x) for k, x in sets.items()}
        shares = {k: float(j.abstained.mean()) for k, j in judged[arch].items()}
        report(arch, shares)
        if arch in args.refit and not args.dry_run:
            write_abstention(path, {**thresholds.to_dict(), "rates": shares})
    if not args.dry_run:
        report("ensemble", refit_ensemble(judged, args.ensemble))


if __name__ == "__main__":
    main()
