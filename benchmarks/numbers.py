"""Reading whole numbers: exact match per length, in-process and through TorchServe; single
digits left whole.

Usage:
    python -m evalsets.make --sets numbers                 # once: artifacts/eval_sets/numbers/
    python -m benchmarks.numbers                           # in-process only (no server)
    python -m benchmarks.numbers --start-torchserve        # + a private TorchServe
    python -m benchmarks.numbers --single-digits           # + the 10 000 MNIST test digits

Options: --sets-dir (default artifacts/eval_sets), --limit N rows, --weights-dir (default
weights/), --concurrency for TorchServe, --data-root (default $MNIST_ROOT), --out (default
artifacts/numbers.json).

In-process, each row goes through `recognition.segmentation.read_line` (timed, one thread),
then one forward pass per model over its candidates, and `resolve`; the number read is the
string of arg-maxes, compared whole with the label (a refusal counts as wrong). Through
TorchServe the file's bytes are POSTed to /predictions/mnist_{mlp,cnn} and the answer's `number`
is compared. --single-digits reads each MNIST test digit as a PNG and counts the ones read as
exactly one digit (without and with the classifier's check of maybe-touching groups) and the
ones whose 28×28 is bit-identical to `preprocess`.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
import torch
from PIL import Image

from benchmarks.robustness import (
    DEFAULT_SETS_DIR,
    DEFAULT_WEIGHTS,
    REPO_ROOT,
    TorchServeClient,
    load_predictors,
    private_torchserve,
)
from benchmarks.robustness_stats import percentiles
from evalsets.encode import encode
from evalsets.read import NumberSample, load_numbers
from recognition.predictor import Predictor
from recognition.preprocessing import ImageError, preprocess
from recognition.segmentation import Slot, candidates, read_line, resolve
from training.data import load_split, resolve_root

log = logging.getLogger("numbers")

DEFAULT_OUT = REPO_ROOT / "artifacts" / "numbers.json"
LENGTH_GROUPS = {"2–6": range(2, 7), "7–10": range(7, 11)}
TARGETS = {"2–6": 0.95, "7–10": 0.90}


def read_digits(predictor: Predictor, slots: list[Slot]) -> tuple[np.ndarray, list[int]]:
    """One model's calibrated probabilities for a line's candidates, and the indices of those
    `resolve` reads (with the model's digit scores), as the handler does."""
    probabilities, _, scores = predictor.judge(candidates(slots))
    return probabilities, resolve(slots, probabilities.max(axis=1).tolist(), scores)


def read_number(predictor: Predictor, slots: list[Slot]) -> str:
    """The number one model reads in a line's slots (arg-max per digit)."""
    probabilities, chosen = read_digits(predictor, slots)
    return "".join(str(int(probabilities[i].argmax())) for i in chosen)


def run_in_process(
    samples: Sequence[NumberSample], predictors: dict[str, Predictor]
) -> tuple[dict[str, list[str | None]], list[float]]:
    """Per model, the number read for each row (None when refused), and the segmentation ms."""
    read: dict[str, list[str | None]] = {name: [] for name in predictors}
    timings = []
    for sample in samples:
        start = time.perf_counter()
        try:
            slots: list[Slot] | None = read_line(sample.path.read_bytes())
        except ImageError:
            slots = None
        timings.append(1000 * (time.perf_counter() - start))
        for name, predictor in predictors.items():
            try:
                read[name].append(None if slots is None else read_number(predictor, slots))
            except ImageError:
                read[name].append(None)
    return read, timings


def run_served(
    samples: Sequence[NumberSample], client: TorchServeClient, models: Sequence[str], workers: int
) -> dict[str, list[str | None]]:
    """Per model, the `number` TorchServe answers for each row (None for a refusal)."""

    def one(sample: NumberSample, model: str) -> str | None:
        ctype = mimetypes.guess_type(sample.path.name)[0] or "application/octet-stream"
        try:
            response = client.client.predict(
                model, sample.path.read_bytes(), {"Content-Type": ctype}
            )
        except requests.RequestException:
            return None
        return response.json().get("number") if response.status_code == 200 else None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {m: list(pool.map(lambda s, m=m: one(s, m), samples)) for m in models}


def exact_match(samples: Sequence[NumberSample], read: Sequence[str | None]) -> dict[str, Any]:
    """Exact-match share per length, per length group and per rendering."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for sample, number in zip(samples, read, strict=True):
        right = number == sample.label
        length = len(sample.label)
        hits[f"len {length:2d}"].append(right)
        hits[f"render {sample.tags.get('render', '?')}"].append(right)
        hits[f"gap {sample.tags.get('gap', '?')}"].append(right)
        for group, lengths in LENGTH_GROUPS.items():
            if length in lengths:
                hits[f"len {group}"].append(right)
        hits["all"].append(right)
    return {k: {"n": len(v), "exact": round(sum(v) / len(v), 4)} for k, v in sorted(hits.items())}


def single_digits(data_root: str | None, predictor: Predictor) -> dict[str, Any]:
    """How the 10 000 MNIST test digits (as PNGs) are read: as one digit, and bit-identically."""
    images, _ = load_split(resolve_root(data_root), train=False)
    whole = verified = identical = 0
    split: list[int] = []
    for index, image in enumerate(images.numpy()):
        data = encode_png(image)
        try:
            slots = read_line(data)
        except ImageError:
            split.append(index)
            continue
        digits = [d for slot in slots for d in slot.whole]
        if len(digits) == 1:
            whole += 1
            identical += bool(np.array_equal(digits[0].image, preprocess(data)))
        _, chosen = read_digits(predictor, slots)
        verified += len(chosen) == 1
        if len(chosen) != 1 or len(digits) != 1:
            split.append(index)
    total = len(images)
    return {
        "n": total,
        "one_digit": round(whole / total, 5),
        "one_digit_with_classifier": round(verified / total, 5),
        "bit_identical": round(identical / total, 5),
        "not_one": split,
    }


def encode_png(image: np.ndarray) -> bytes:
    """A 28×28 uint8 digit as a grey PNG."""
    return encode(Image.fromarray(image), "PNG")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets-dir", type=Path, default=DEFAULT_SETS_DIR)
    parser.add_argument("--limit", type=int, help="rows (default: all)")
    parser.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--start-torchserve", action="store_true", help="and read through it")
    parser.add_argument("--concurrency", type=int, default=4, help="default: %(default)s")
    parser.add_argument("--single-digits", action="store_true", help="the 10k MNIST test digits")
    parser.add_argument("--data-root", help="MNIST root (default: $MNIST_ROOT)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    return parser.parse_args(argv)


def show(title: str, report: dict[str, Any]) -> None:
    """One table: exact match per key."""
    print(f"\n{title}")
    for key, value in report.items():
        print(f"  {key:18s} {value['exact'] * 100:6.1f} %  (n={value['n']})")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    samples = load_numbers(args.sets_dir / "numbers", args.limit)
    predictors = load_predictors(args.weights_dir)
    read, timings = run_in_process(samples, predictors)
    result: dict[str, Any] = {"rows": len(samples), "segmentation_ms": percentiles(timings)}
    result["in_process"] = {name: exact_match(samples, r) for name, r in read.items()}
    for name, report in result["in_process"].items():
        show(f"in-process {name}", report)
    if args.start_torchserve:
        with ExitStack() as stack:
            url, key_file, management = stack.enter_context(private_torchserve())
            client = TorchServeClient(url, key_file, management)
            served = run_served(samples, client, list(predictors), args.concurrency)
        result["torchserve"] = {name: exact_match(samples, r) for name, r in served.items()}
        for name, report in result["torchserve"].items():
            show(f"TorchServe {name}", report)
    if args.single_digits:
        cnn = predictors.get("mnist_cnn") or next(iter(predictors.values()))
        result["single_digits"] = single_digits(args.data_root, cnn)
        summary = {k: v for k, v in result["single_digits"].items() if k != "not_one"}
        print(f"\nsingle MNIST test digits: {summary}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
