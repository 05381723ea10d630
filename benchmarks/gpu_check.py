"""GPU check: every TorchServe worker on CUDA, the served accuracy, a short perf run.

    make gpu-check                  # python -m benchmarks.gpu_check --limit 1000 --seconds 10

Starts a private TorchServe (archives built from weights/) with `number_of_gpu` = the visible
GPUs and one worker per GPU per model; asserts from describe (`"gpu": true`) and from the
handler's start-up line in model_log.log ("model mnist_cnn: cnn on cuda:N") that each worker's
model is on CUDA; predicts the first --limit MNIST test digits through the inference API; runs
--seconds of --clients concurrent clients per model; prints the figures.

    python -m benchmarks.gpu_check --in-process     # the handler alone, without TorchServe

`--in-process` runs the handler itself (TorchServe's Python `Context` with gpu_id 0, the
checkpoints read as from an unpacked archive) on CUDA and on the CPU side by side: each model's
parameters on `cuda`, the accuracy of both devices over the same digits through `handle`, how
many answers differ between them (float rounding may flip a digit on the edge of a threshold:
at most --max-differ %), and the p50 of one batch of --batch requests on each. It needs torch,
the `ts` Python package and the repository, not Java or the frontend: for a GPU machine that
has no TorchServe.

It lives in benchmarks/
because the MNIST files are read by training.data, which scripts/ may not import. Without CUDA
it stops at once: exit status 1 and one line saying why.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from ts.context import Context, RequestProcessor

from benchmarks.perf_hostile import quantile
from evalsets.bench_inputs import mnist_png
from handlers.mnist_handler import MnistHandler
from recognition.catalog import MODEL_NAMES
from scripts.build_archives import build_archives
from stack.paths import REPO_ROOT
from stack.ports import loopback_overrides
from stack.torchserve import TorchServe
from training.data import load_split, resolve_root

START_LINE = re.compile(r"model (\S+): \w+ on (\S+?),")


class GpuCheckError(RuntimeError):
    """A check did not hold; the message is the one line printed."""


def cuda_devices() -> int:
    """GPUs torch can use here; GpuCheckError when there are none."""
    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise GpuCheckError(
            "no CUDA device: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run it on a GPU machine"
        )
    return torch.cuda.device_count()


def worker_devices(describe: Any) -> list[bool]:
    """The `gpu` flag of each worker in a describe answer."""
    return [bool(worker.get("gpu")) for worker in describe[0].get("workers", [])]


def logged_devices(model_log: str) -> dict[str, list[str]]:
    """Model name → the device of each worker's start-up line ("cuda:0", "cpu")."""
    found: dict[str, list[str]] = {}
    for model, device in START_LINE.findall(model_log):
        found.setdefault(model, []).append(device)
    return found


def check_devices(server: TorchServe, gpus: int) -> dict[str, Any]:
    """Every model has `gpus` workers, each on CUDA by describe and by its log line."""
    log_text = (server.log_dir / "model_log.log").read_text(errors="replace")
    logged = logged_devices(log_text)
    seen: dict[str, Any] = {}
    for model in MODEL_NAMES:
        flags = worker_devices(server.describe(model))
        devices = logged.get(model, [])
        if len(flags) != gpus or not all(flags):
            raise GpuCheckError(
                f"{model}: describe shows workers gpu={flags}, expected {gpus} × true"
            )
        if len(devices) < gpus or not all(d.startswith("cuda:") for d in devices):
            raise GpuCheckError(
                f"{model}: model_log.log says the model is on {devices or 'nothing'}"
            )
        seen[model] = {"workers": len(flags), "devices": sorted(set(devices))}
    return seen


def accuracy(server: TorchServe, pngs: list[bytes], labels: list[int]) -> dict[str, float]:
    """Share of the digits each model predicts right through /predictions."""

    def predicted(model: str, png: bytes) -> int | None:
        answer = server.client.predict(model, png, {"Content-Type": "image/png"}, timeout=10)
        return answer.json().get("prediction") if answer.status_code == 200 else None

    result = {}
    with ThreadPoolExecutor(8) as pool:
        for model in MODEL_NAMES:
            answers = list(pool.map(lambda png, m=model: predicted(m, png), pngs))
            right = sum(a == y for a, y in zip(answers, labels, strict=True))
            result[model] = round(100 * right / len(labels), 2)
    return result


def throughput(server: TorchServe, png: bytes, clients: int, seconds: float) -> dict[str, Any]:
    """Requests/s and p50/p99 per model under `clients` closed-loop clients for `seconds`."""

    def client(model: str) -> list[float]:
        times, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            answer = server.client.predict(model, png, {"Content-Type": "image/png"}, timeout=10)
            if answer.status_code == 200:
                times.append(time.monotonic() - began)
        return times

    result = {}
    for model in MODEL_NAMES:
        with ThreadPoolExecutor(clients) as pool:
            times = [t for part in pool.map(client, [model] * clients) for t in part]
        result[model] = {
            "req_per_s": round(len(times) / seconds, 1),
            "p50_ms": quantile(times, 0.5),
            "p99_ms": quantile(times, 0.99),
        }
    return result


def handler_on(device_gpu: int | None, weights_dir: Path, model: str) -> Any:
    """The MnistHandler initialised as a worker with `gpu_id` (None: a CPU worker), reading
    the checkpoint from `weights_dir` as from an unpacked archive."""
    manifest = {"model": {"modelName": model, "serializedFile": f"{model}.pt"}}
    context = Context(model, str(weights_dir), manifest, 8, device_gpu, "0.12.0")
    handler = MnistHandler()
    handler.initialize(context)
    return handler


def handled(handler: Any, pngs: Sequence[bytes]) -> list[dict[str, Any]]:
    """One batch through `handle`, as TorchServe hands it over; the answers parsed."""
    handler.context.request_processor = [RequestProcessor({}) for _ in pngs]
    return [json.loads(a) for a in handler.handle([{"data": p} for p in pngs], handler.context)]


def batch_p50(handler: Any, pngs: Sequence[bytes], seconds: float) -> float | None:
    """The p50 of `handle` over one batch of `pngs`, repeated for `seconds`."""
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.perf_counter()
        handled(handler, pngs)
        times.append(time.perf_counter() - began)
    return quantile(times, 0.5)


def in_process(args: argparse.Namespace) -> dict[str, Any]:
    """The handler on CUDA and on the CPU, side by side: device, accuracy, batch p50."""
    cuda_devices()
    images, labels = load_split(resolve_root(args.data_root), train=False)
    pngs = [mnist_png(image.numpy()) for image in images[: args.limit]]
    truth = labels[: args.limit].tolist()
    figures: dict[str, Any] = {"names": [torch.cuda.get_device_name(0)]}
    for model in MODEL_NAMES:
        answers, row = {}, {}
        for label, gpu in (("cuda", 0), ("cpu", None)):
            handler = handler_on(gpu, args.weights_dir, model)
            on = {p.device.type for p in handler.predictor.model.parameters()}
            if on != {label}:
                raise GpuCheckError(f"{model} with gpu_id={gpu}: parameters on {on}")
            answers[label] = [
                (a.get("prediction"), a.get("abstain"))
                for i in range(0, len(pngs), args.batch)
                for a in handled(handler, pngs[i : i + args.batch])
            ]
            right = sum(a[0] == y for a, y in zip(answers[label], truth, strict=True))
            row[label] = {
                "accuracy_pct": round(100 * right / len(truth), 2),
                "batch_p50_ms": batch_p50(handler, pngs[: args.batch], args.seconds),
            }
        differ = sum(a != b for a, b in zip(answers["cuda"], answers["cpu"], strict=True))
        row["answers_differing"] = differ
        if 100 * differ / len(truth) > args.max_differ:
            raise GpuCheckError(f"{model}: {differ} answers differ between CUDA and CPU")
        if row["cuda"]["accuracy_pct"] < args.min_accuracy:
            raise GpuCheckError(f"{model}: accuracy under {args.min_accuracy} %: {row}")
        figures[model] = row
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every check in order; GpuCheckError at the first that does not hold."""
    gpus = cuda_devices()
    images, labels = load_split(resolve_root(args.data_root), train=False)
    pngs = [mnist_png(image.numpy()) for image in images[: args.limit]]
    with tempfile.TemporaryDirectory(prefix="mnist-gpu-check-") as tmp:
        store = Path(tmp) / "model_store"
        build_archives(weights_dir=args.weights_dir, model_store=store)
        overrides = {**loopback_overrides(), "number_of_gpu": str(gpus)}
        with TorchServe(Path(tmp) / "work", store, overrides=overrides) as server:
            for model in MODEL_NAMES:
                server.scale(model, gpus, gpus)
            workers = check_devices(server, gpus)
            served = accuracy(server, pngs, labels[: args.limit].tolist())
            low = {m: a for m, a in served.items() if a < args.min_accuracy}
            if low:
                raise GpuCheckError(f"accuracy under {args.min_accuracy} % on the GPU: {low}")
            return {
                "gpus": gpus,
                "names": [torch.cuda.get_device_name(i) for i in range(gpus)],
                "workers": workers,
                "accuracy_pct": served,
                "perf": throughput(server, pngs[0], args.clients, args.seconds),
            }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="MNIST root (default: $MNIST_ROOT)")
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--limit", type=int, default=1000, help="MNIST test digits [1000]")
    parser.add_argument("--min-accuracy", type=float, default=98.0, help="per model, in %% [98.0]")
    parser.add_argument("--clients", type=int, default=16, help="perf clients per model [16]")
    parser.add_argument("--seconds", type=float, default=10.0, help="perf seconds per model [10]")
    parser.add_argument(
        "--in-process", action="store_true", help="the handler alone, CUDA beside CPU"
    )
    parser.add_argument("--batch", type=int, default=8, help="--in-process batch size [8]")
    parser.add_argument(
        "--max-differ",
        type=float,
        default=0.2,
        help="--in-process: %% of answers that may differ between CUDA and CPU [0.2]",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks; print the figures, or one line with the reason and exit 1."""
    try:
        args = parse_args(argv)
        figures = in_process(args) if args.in_process else run(args)
    except GpuCheckError as exc:
        print(f"gpu-check: FAILED: {exc}", file=sys.stderr)
        return 1
    for key, value in figures.items():
        print(f"gpu-check: {key}: {value}")
    print("gpu-check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
