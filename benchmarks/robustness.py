"""Accuracy per evaluation set and model: in-process, through TorchServe and through the web UI.

Usage:
    python -m evalsets.make                                    # once: artifacts/eval_sets/
    python -m benchmarks.robustness                            # in-process only (no server)
    python -m benchmarks.robustness --start-torchserve         # + a private TorchServe
    python -m benchmarks.robustness --start-torchserve --start-webui   # + the web UI on it
    python -m benchmarks.robustness --torchserve http://127.0.0.1:8080 \\
        --key-file run/torchserve/key_file.json --webui http://127.0.0.1:5000

Options: --sets clean phone … (default: every set found), --limit N files per set, --weights-dir
(default weights/), --concurrency for the HTTP paths, --out (default artifacts/robustness.json),
--failures CSV (every file refused or misread in-process, with each model's answer).

(a) in-process: every file goes through `recognition.preprocessing.preprocess` and a
`recognition.predictor.Predictor` of each committed model, single-threaded (cv2 and torch
limited to one thread), timing the preprocessing of each file; the ensemble is the fitted
log-linear pool of config/ensemble.json (its top class; the web UI may abstain instead). (b)
TorchServe, a running one or (--start-torchserve) a private one on free loopback ports with
archives built from the working tree into a temporary model store: the raw file bytes are POSTed
to /predictions/mnist_{mlp,cnn} with the inference key (re-read, then renewed with the API key,
when TorchServe rejects it). (c) The web UI, a running one or (--start-webui) the app under
gunicorn on the TorchServe of (b): the file is uploaded to /api/predict (multipart field
`file`), which answers for both models and their ensemble. A file that is rejected (4xx) counts
as wrong. Prints one table per path and writes everything, with per-tag accuracy and the CNN's
mistakes, as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import mimetypes
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import requests
import torch

from benchmarks.robustness_stats import (
    Outcome,
    failures,
    honesty_table,
    jpeg_timing,
    mistakes,
    summarize,
    table,
    write_failures,
)
from evalsets.read import Sample, find_sets, load_set
from recognition.abstention import NOT_A_DIGIT
from recognition.calibration import pool
from recognition.catalog import MODEL_NAMES, MODELS
from recognition.models import load_checkpoint
from recognition.predictor import Predictor
from recognition.preprocessing import ImageError, preprocess
from recognition.voters import voters
from scripts.build_archives import build_archives
from stack.gunicorn import Gunicorn, clean_environ, webui_environ
from stack.ports import free_ports, loopback_overrides
from stack.torchserve import TorchServe
from training.abstain import ensemble_abstained
from tsclient.client import TorchServeClient as TsClient
from tsclient.keys import KeyStore
from webui import ensemble as ensemble_rule
from webui.ensemble import Ensemble

log = logging.getLogger("robustness")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS_DIR = REPO_ROOT / "artifacts" / "eval_sets"
DEFAULT_OUT = REPO_ROOT / "artifacts" / "robustness.json"
DEFAULT_WEIGHTS = REPO_ROOT / "weights"
BATCH = 512  # images per forward pass in-process
ENSEMBLE = "ensemble"
SHED_RETRIES = 30  # times a 503 with Retry-After from the web UI is asked again
MAX_SHED_WAIT = 1.0  # seconds, at most, between those tries
FLOOR = 1e-12  # the web UI's floor on a probability before the log-linear pool (webui.merge)
TIMEOUT = 30.0
mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("image/avif", ".avif")


# ---------------------------------------------------------------------------------------------
# (a) In-process
# ---------------------------------------------------------------------------------------------


def load_predictors(weights_dir: Path) -> dict[str, Predictor]:
    """The committed checkpoints that exist, by TorchServe model name."""
    predictors = {}
    for model in MODELS:
        path = weights_dir / model.weights
        if path.is_file():
            predictors[model.name] = Predictor.from_checkpoint(path)
        else:
            log.warning("no %s: the in-process path skips %s", path, model.name)
    return predictors


def pool_weights(predictors: dict[str, Predictor], rule: Ensemble) -> dict[str, float]:
    """The pool's weight in `rule` for each loaded model, by TorchServe name."""
    return {m.name: rule.weights.get(m.arch, 0.0) for m in MODELS if m.name in predictors}


def judged(
    images: Sequence[np.ndarray], predictors: dict[str, Predictor], rule: Ensemble | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per model (and, given the ensemble's `rule`, the ensemble): the calibrated distributions
    of `images` and whether each answer abstains, as the handler and the web UI decide."""
    weights = {} if rule is None else pool_weights(predictors, rule)
    probabilities, abstains, not_digit = {}, {}, {}
    for name, predictor in predictors.items():
        parts = [predictor.judge(images[c : c + BATCH]) for c in range(0, len(images), BATCH)]
        probabilities[name] = np.concatenate([part.probabilities for part in parts])
        verdicts = [v for part in parts for v in part.verdicts]
        abstains[name] = np.array([a for a, _ in verdicts])
        not_digit[name] = np.array([reason == NOT_A_DIGIT for _, reason in verdicts])
    if rule is not None and weights and len(probabilities) > 1:
        logs = [np.log(np.maximum(p, FLOOR)) for p in probabilities.values()]
        pooled = np.exp(pool(logs, [weights.get(name, 0.0) for name in probabilities]))
        probabilities[ENSEMBLE] = pooled
        low = rule.min_confidence / 100
        flags = np.all([not_digit[name] for name in voters(weights)], axis=0)
        abstains[ENSEMBLE] = ensemble_abstained(pooled, flags, low)
    return probabilities, abstains


def timed_preprocess(data: bytes) -> tuple[np.ndarray | None, int, str | None, float]:
    """(image or None, status, error, milliseconds) for one file."""
    start = time.perf_counter()
    try:
        image = preprocess(data)
        status, error = 200, None
    except ImageError as exc:
        image, status, error = None, exc.status, str(exc)
    return image, status, error, 1000 * (time.perf_counter() - start)


def run_in_process(
    samples: Sequence[Sample],
    predictors: dict[str, Predictor],
    rule: Ensemble | None = None,
) -> list[Outcome]:
    """Preprocess every file (timed, one thread) and classify the results with every model and,
    given the ensemble's `rule` (its pool weights and threshold), with the ensemble (the pool's
    top class, as the web UI computes it; its abstention is recorded beside it, not counted
    against accuracy)."""
    outcomes, images, where = [], [], []
    for i, sample in enumerate(samples):
        image, status, error, ms = timed_preprocess(sample.path.read_bytes())
        outcomes.append(Outcome({}, status, error, ms))
        if image is not None:
            images.append(image)
            where.append(i)
    if not images:
        return outcomes
    probabilities, abstains = judged(images, predictors, rule)
    for name, probs in probabilities.items():
        for row, i in enumerate(where):
            outcomes[i].predictions[name] = int(probs[row].argmax())
            outcomes[i].probabilities[name] = probs[row]
            outcomes[i].abstained[name] = bool(abstains[name][row])
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
        """The UI's answers (both models and their ensemble) for one file. A 503 with
        Retry-After (the UI shedding load: costly photos are admitted one at a time) is asked
        again after the wait it gives, up to SHED_RETRIES times: this measures accuracy."""
        ctype = mimetypes.guess_type(sample.path.name)[0] or "application/octet-stream"
        files = {"file": (sample.path.name, sample.path.read_bytes(), ctype)}
        for _ in range(SHED_RETRIES):
            response = self.session.post(f"{self.url}/api/predict", files=files, timeout=TIMEOUT)
            wait = response.headers.get("Retry-After", "")
            if response.status_code != 503 or not wait.isdigit():
                break
            time.sleep(min(float(wait), MAX_SHED_WAIT))
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
    for name in MODEL_NAMES:
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
    parser.add_argument(
        "--failures", type=Path, help="CSV of every file refused or misread in-process (none)"
    )
    return parser.parse_args(argv)


def in_process_path(
    args: argparse.Namespace, samples: dict[str, list[Sample]], report: dict[str, Any]
) -> None:
    """Path (a): results, the CNN's mistakes and the phone JPEG timing into the report; with
    --failures, every refused or misread file into that CSV."""
    predictors = load_predictors(args.weights_dir)
    rule = ensemble_rule.load()
    models = [*predictors, ENSEMBLE] if len(predictors) > 1 else list(predictors)
    results, failed = {}, []
    for name, files in samples.items():
        outcomes = run_in_process(files, predictors, rule)
        results[name] = summarize(files, outcomes, models)
        report["mistakes"]["in_process_cnn"][name] = mistakes(files, outcomes, "mnist_cnn")
        failed += failures(name, files, outcomes, models)
        if name == "phone":
            report["jpeg_1600x1200_ms"] = jpeg_timing(files, outcomes)
    report["paths"]["in_process"] = results
    print(table("(a) in-process", results, models))
    print(honesty_table(results, models))
    if args.failures:
        write_failures(args.failures, failed, models)
        log.info("wrote %s (%d files)", args.failures, len(failed))


def http_paths(
    args: argparse.Namespace, samples: dict[str, list[Sample]], report: dict[str, Any]
) -> None:
    """Paths (b) and (c), on running services or ones started here, into the report."""
    with ExitStack() as stack:
        ts_url, key_file, management = args.torchserve, args.key_file, args.management
        if args.start_torchserve:
            ts_url, key_file, management = stack.enter_context(private_torchserve())
        targets = []
        if ts_url:
            client = TorchServeClient(ts_url, key_file, management)
            targets.append(("torchserve", client.classify, list(MODEL_NAMES)))
        webui = args.webui
        if args.start_webui:
            if not ts_url:
                raise SystemExit("--start-webui needs --torchserve URL or --start-torchserve")
            webui = stack.enter_context(private_webui(ts_url, management, key_file))
        if webui:
            targets.append(("webui", WebUIClient(webui).classify, [*MODEL_NAMES, "ensemble"]))
        for path, classify, models_here in targets:
            results = {}
            for name, files in samples.items():
                outcomes = run_http(files, classify, models_here, args.concurrency)
                results[name] = summarize(files, outcomes, models_here)
                wrong = mistakes(files, outcomes, "mnist_cnn")
                report["mistakes"][f"{path}_cnn_{name}"] = wrong
            report["paths"][path] = results
            print(table(f"({'b' if path == 'torchserve' else 'c'}) {path}", results, models_here))


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
        "mistakes": {},
    }
    if not args.no_in_process:
        report["mistakes"]["in_process_cnn"] = {}
        in_process_path(args, samples, report)
    http_paths(args, samples, report)
    if "jpeg_1600x1200_ms" in report:
        t = report["jpeg_1600x1200_ms"]
        print(f"preprocessing a 1600×1200 phone JPEG: p50 {t['p50']} ms, p95 {t['p95']} ms")
    report["mistakes"] = report.pop("mistakes")  # last in the JSON, as before
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
