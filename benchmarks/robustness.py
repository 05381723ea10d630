"""Accuracy per evaluation set and model: in-process, through TorchServe and through the web UI.

Usage:
    python -m benchmarks.make_eval_sets                        # once: artifacts/eval_sets/
    python -m benchmarks.robustness                            # in-process only (no server)
    python -m benchmarks.robustness --start-torchserve         # + a private TorchServe
    python -m benchmarks.robustness --start-torchserve --start-webui   # + the web UI on it
    python -m benchmarks.robustness --torchserve http://127.0.0.1:8080 \\
        --key-file run/torchserve/key_file.json --webui http://127.0.0.1:5000

Options: --sets clean phone … (default: every set found), --limit N files per set, --weights-dir
(default weights/), --concurrency for the HTTP paths, --out (default artifacts/robustness.json).

(a) in-process: every file goes through `recognition.preprocessing.preprocess` and both committed
models, single-threaded (cv2 and torch limited to one thread), timing the preprocessing of each
file. (b) TorchServe, a running one or (--start-torchserve) a private one on free loopback ports
with archives built from the working tree into a temporary model store: the raw file bytes are
POSTed to /predictions/mnist_{mlp,cnn} with the inference key (re-read, then renewed with the
API key, when TorchServe rejects it). (c) The web UI, a running one or (--start-webui) the app
under gunicorn on the TorchServe of (b): the file is uploaded to /api/predict (multipart field
`file`), which answers for both models and their ensemble. A file that is rejected (4xx) counts
as wrong. Prints one table per path and writes everything, with per-tag accuracy and the CNN's
mistakes, as JSON.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import mimetypes
import platform
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import requests
import torch

from recognition.models import load_checkpoint
from recognition.preprocessing import ImageError, normalize, preprocess
from scripts.build_archives import build_archives
from stack.gunicorn import Gunicorn, clean_environ, webui_environ
from stack.ports import free_ports, loopback_overrides
from stack.torchserve import TorchServe
from tsclient.client import TorchServeClient as TsClient
from tsclient.keys import KeyStore

log = logging.getLogger("robustness")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS_DIR = REPO_ROOT / "artifacts" / "eval_sets"
DEFAULT_OUT = REPO_ROOT / "artifacts" / "robustness.json"
DEFAULT_WEIGHTS = REPO_ROOT / "weights"
SET_ORDER = ("clean", "phone", "canvas", "lowres", "containers")
MODELS = ("mnist_mlp", "mnist_cnn")
TIMEOUT = 30.0
mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("image/avif", ".avif")


@dataclass(frozen=True)
class Sample:
    """One evaluation file."""

    path: Path
    label: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one path answered for one file: a digit per model, or the HTTP status of a refusal."""

    predictions: dict[str, int | None]
    status: int = 200
    error: str | None = None
    preprocess_ms: float | None = None


# ---------------------------------------------------------------------------------------------
# Sets and statistics
# ---------------------------------------------------------------------------------------------


def load_set(folder: Path, limit: int | None = None) -> list[Sample]:
    """The files of one set with their labels and tags (labels.csv); with `limit`, that many
    spread evenly over the set (sets are ordered by variant, so the first N would be biased)."""
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if limit is not None and limit < len(rows):
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    samples = []
    for row in rows:
        tags = dict(pair.split("=", 1) for pair in row["tags"].split() if "=" in pair)
        samples.append(Sample(folder / row["file"], int(row["label"]), tags))
    return samples


def find_sets(root: Path, names: Sequence[str] | None) -> list[str]:
    """The sets to run: those asked for, else every generated set, in the usual order."""
    present = [p.name for p in sorted(root.iterdir()) if (p / "labels.csv").is_file()]
    if names:
        missing = [n for n in names if n not in present]
        if missing:
            raise SystemExit(
                f"no set {missing} under {root}: run python -m benchmarks.make_eval_sets"
            )
        return list(names)
    if not present:
        raise SystemExit(
            f"no evaluation sets under {root}: run python -m benchmarks.make_eval_sets"
        )
    return sorted(present, key=lambda n: (SET_ORDER.index(n) if n in SET_ORDER else 99, n))


def accuracy(samples: Sequence[Sample], outcomes: Sequence[Outcome], model: str) -> float:
    """Share of files whose answer for `model` is the label (refusals count as wrong)."""
    right = sum(o.predictions.get(model) == s.label for s, o in zip(samples, outcomes, strict=True))
    return right / max(len(samples), 1)


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50, p95 and max of some timings (ms)."""
    arr = np.asarray(list(values), np.float64)
    if arr.size == 0:
        return {}
    p50, p95 = np.percentile(arr, (50, 95))
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "max": round(arr.max(), 2)}


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
    summary["by_tag"] = by_tag(samples, outcomes, models)
    return summary


# ---------------------------------------------------------------------------------------------
# (a) In-process
# ---------------------------------------------------------------------------------------------


def load_models(weights_dir: Path) -> dict[str, torch.nn.Module]:
    """The committed checkpoints that exist, by TorchServe model name."""
    models = {}
    for name in MODELS:
        path = weights_dir / f"{name}.pt"
        if path.is_file():
            models[name] = load_checkpoint(path)[0].eval()
        else:
            log.warning("no %s: the in-process path skips %s", path, name)
    return models


def timed_preprocess(data: bytes) -> tuple[np.ndarray | None, int, str | None, float]:
    """(image or None, status, error, milliseconds) for one file."""
    start = time.perf_counter()
    try:
        image = preprocess(data)
        status, error = 200, None
    except ImageError as exc:
        image, status, error = None, exc.status, str(exc)
    return image, status, error, 1000 * (time.perf_counter() - start)


def run_in_process(samples: Sequence[Sample], models: dict[str, torch.nn.Module]) -> list[Outcome]:
    """Preprocess every file (timed, one thread) and classify the results with every model."""
    outcomes, images, where = [], [], []
    for i, sample in enumerate(samples):
        image, status, error, ms = timed_preprocess(sample.path.read_bytes())
        outcomes.append(Outcome({}, status, error, ms))
        if image is not None:
            images.append(image)
            where.append(i)
    if images:
        batch = torch.from_numpy(normalize(np.stack(images))).unsqueeze(1)
        with torch.inference_mode():
            for name, model in models.items():
                predicted = torch.cat([model(chunk).argmax(1) for chunk in batch.split(512)])
                for i, digit in zip(where, predicted.tolist(), strict=True):
                    outcomes[i].predictions[name] = int(digit)
    return outcomes


# ---------------------------------------------------------------------------------------------
# (b) TorchServe and (c) the web UI
# ---------------------------------------------------------------------------------------------


class TorchServeClient:
    """POSTs raw image bytes to TorchServe's inference API, surviving key expiry (`tsclient`)."""

    def __init__(self, url: str, key_file: Path | None, management_url: str | None) -> None:
        keys = KeyStore(key_file)
        self.client = TsClient(
            url, management_url or url, keys, timeout=TIMEOUT, pool_size=16, connect_retries=0
        )

    def predict(self, model: str, data: bytes, content_type: str) -> tuple[int | None, int, str]:
        """(digit or None, HTTP status, error message) for one image."""
        response = self.client.predict(model, data, {"Content-Type": content_type})
        if response.status_code != 200:
            return None, response.status_code, response.text[:200]
        return int(response.json()["prediction"]), 200, ""

    def classify(self, sample: Sample, models: Sequence[str]) -> Outcome:
        """Both models' answers for one file."""
        data = sample.path.read_bytes()
        ctype = mimetypes.guess_type(sample.path.name)[0] or "application/octet-stream"
        outcome = Outcome({})
        for model in models:
            digit, status, error = self.predict(model, data, ctype)
            outcome.predictions[model] = digit
            if status != 200:
                outcome.status, outcome.error = status, error
        return outcome


class WebUIClient:
    """Uploads image files to the web UI's /api/predict."""

    ANSWERS: ClassVar[dict[str, str]] = {
        "mnist_mlp": "mlp_prediction",
        "mnist_cnn": "cnn_prediction",
        "ensemble": "ensemble_prediction",
    }

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def classify(self, sample: Sample, models: Sequence[str]) -> Outcome:
        """The UI's answers (both models and their ensemble) for one file."""
        ctype = mimetypes.guess_type(sample.path.name)[0] or "application/octet-stream"
        files = {"file": (sample.path.name, sample.path.read_bytes(), ctype)}
        response = self.session.post(f"{self.url}/api/predict", files=files, timeout=TIMEOUT)
        if response.status_code != 200:
            return Outcome({}, response.status_code, response.text[:200])
        body = response.json()
        return Outcome({m: body.get(self.ANSWERS[m]) for m in models})


def run_http(
    samples: Sequence[Sample],
    classify: Callable[[Sample, Sequence[str]], Outcome],
    models: Sequence[str],
    concurrency: int,
) -> list[Outcome]:
    """Classify every file through an HTTP client, `concurrency` requests at a time."""

    def one(sample: Sample) -> Outcome:
        try:
            return classify(sample, models)
        except (requests.RequestException, ValueError, KeyError) as exc:
            return Outcome({}, 599, f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, samples))


@contextmanager
def private_torchserve() -> Iterator[tuple[str, Path, str]]:
    """A TorchServe of our own (archives built from the working tree into a temporary model
    store, free loopback ports, one worker per model): (inference URL, key file, management)."""
    with tempfile.TemporaryDirectory(prefix="robustness-ts-") as work:
        store = Path(work) / "model_store"
        build_archives(model_store=store)
        overrides = {**loopback_overrides(), "default_workers_per_model": "1"}
        with TorchServe(Path(work) / "server", store, overrides=overrides) as server:
            yield server.inference_url, server.key_file, server.management_url


@contextmanager
def private_webui(inference: str, management: str | None, key_file: Path | None) -> Iterator[str]:
    """The web UI under gunicorn (`stack.gunicorn`, the repository's config) on a free loopback
    port, talking to the given TorchServe: its base URL."""
    (port,) = free_ports(1)
    env = clean_environ(webui_environ(inference, management or inference, key_file))
    with (
        tempfile.TemporaryDirectory(prefix="robustness-ui-") as work,
        Gunicorn(f"127.0.0.1:{port}", env, Path(work) / "gunicorn.log") as ui,
    ):
        yield ui.url


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def weights_info(weights_dir: Path) -> dict[str, dict[str, Any]]:
    """For each checkpoint: sha256 (12 hex), the last commit touching it, and its test accuracy."""
    info = {}
    for name in MODELS:
        path = weights_dir / f"{name}.pt"
        if not path.is_file():
            continue
        entry: dict[str, Any] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:12]}
        entry["commit"] = _git(["log", "-1", "--format=%h %cs", "--", str(path)]) or "uncommitted"
        if _git(["status", "--porcelain", "--", str(path)]):
            entry["commit"] += " (modified)"
        _, meta = load_checkpoint(path)
        for key in ("test_accuracy", "epochs"):
            if key in meta:
                entry[key] = meta[key]
        info[name] = entry
    return info


def _git(args: list[str]) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets-dir", type=Path, default=DEFAULT_SETS_DIR, help="%(default)s")
    parser.add_argument("--sets", nargs="+", help="sets to run (default: all generated)")
    parser.add_argument("--limit", type=int, help="first N files of each set (default: all)")
    parser.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS, help="%(default)s")
    parser.add_argument("--no-in-process", action="store_true", help="skip path (a)")
    parser.add_argument("--torchserve", metavar="URL", help="inference API of a running server")
    parser.add_argument("--key-file", type=Path, help="its key_file.json (for the token)")
    parser.add_argument(
        "--management", metavar="URL", help="its management API, to renew an expired key"
    )
    parser.add_argument(
        "--start-torchserve", action="store_true", help="start a private TorchServe for path (b)"
    )
    parser.add_argument("--webui", metavar="URL", help="base URL of a running web UI")
    parser.add_argument(
        "--start-webui",
        action="store_true",
        help="serve the web UI app in-process for path (c), on the TorchServe of path (b)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP requests in flight (4)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="%(default)s")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    names = find_sets(args.sets_dir, args.sets)
    samples = {n: load_set(args.sets_dir / n, args.limit) for n in names}
    report: dict[str, Any] = {
        "weights": weights_info(args.weights_dir),
        "code_commit": _git(["rev-parse", "--short", "HEAD"]),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "limit": args.limit,
        "paths": {},
    }
    errors: dict[str, Any] = {}

    if not args.no_in_process:
        models = load_models(args.weights_dir)
        results, wrong = {}, {}
        for name in names:
            outcomes = run_in_process(samples[name], models)
            results[name] = summarize(samples[name], outcomes, list(models))
            wrong[name] = mistakes(samples[name], outcomes, "mnist_cnn")
            if name == "phone":
                report["jpeg_1600x1200_ms"] = jpeg_timing(samples[name], outcomes)
        report["paths"]["in_process"] = results
        errors["in_process_cnn"] = wrong
        print(table("(a) in-process", results, list(models)))

    with ExitStack() as stack:
        ts_url, key_file, management = args.torchserve, args.key_file, args.management
        if args.start_torchserve:
            ts_url, key_file, management = stack.enter_context(private_torchserve())
        targets = []
        if ts_url:
            client = TorchServeClient(ts_url, key_file, management)
            targets.append(("torchserve", client.classify, list(MODELS)))
        webui = args.webui
        if args.start_webui:
            if not ts_url:
                raise SystemExit("--start-webui needs --torchserve URL or --start-torchserve")
            webui = stack.enter_context(private_webui(ts_url, management, key_file))
        if webui:
            targets.append(("webui", WebUIClient(webui).classify, [*MODELS, "ensemble"]))
        for path, classify, models_here in targets:
            results = {}
            for name in names:
                outcomes = run_http(samples[name], classify, models_here, args.concurrency)
                results[name] = summarize(samples[name], outcomes, models_here)
                errors[f"{path}_cnn_{name}"] = mistakes(samples[name], outcomes, "mnist_cnn")
            report["paths"][path] = results
            print(table(f"({'b' if path == 'torchserve' else 'c'}) {path}", results, models_here))

    if "jpeg_1600x1200_ms" in report:
        t = report["jpeg_1600x1200_ms"]
        print(f"preprocessing a 1600×1200 phone JPEG: p50 {t['p50']} ms, p95 {t['p95']} ms")
    report["mistakes"] = errors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
