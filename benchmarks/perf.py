"""Performance and reliability benchmark of mnist-serve: in-process vs TorchServe vs web UI.

    python -m benchmarks.perf                     # full run: starts its own TorchServe + gunicorn
    python -m benchmarks.perf --quick             # short cells, for development
    python -m benchmarks.perf --clients 1 16 --inputs mnist_png --targets ts_cnn ui
    python -m benchmarks.perf --attach --ts-url http://127.0.0.1:8080 \\
        --management-url http://127.0.0.1:8081 --ui-url http://127.0.0.1:5000 \\
        --key-file run/torchserve/key_file.json   # services that already run (`make run`)
    python -m benchmarks.perf cold-start --repeat 3   # `torchserve_ctl start` → both READY
    python -m benchmarks.perf soak --minutes 5        # 16 clients, RSS of every process
    python -m benchmarks.perf fuzz --count 3000       # mutated PNG/JPEG/GIF through the API

Bench mode measures, side by side on the same three images (perf_inputs: 28×28 MNIST PNG,
280×280 canvas PNG, 1600×1200 phone JPEG) and at 1, 4, 16 and 64 concurrent clients:
(a) the in-process baseline: preprocessing and the model(s) called in one Python process, as a
plain Flask app with the models loaded would; (b) each TorchServe endpoint directly; (c)
`POST /api/predict` end to end through gunicorn. The load comes from a separate process
(benchmarks/perf_load.py). Results: p50/p95/p99 latency, req/s, errors, CPU per request, the
ratios (b)/(a) and (c)/(a), the targets met or not, the machine and what else ran on it.

The data root is --data-root or $MNIST_ROOT. Output goes to artifacts/bench/ (perf.json,
perf.png, coldstart.json, soak.json, fuzz.json). Tuning knobs (--workers, --batch-size,
--max-batch-delay, --omp-threads, --gunicorn-workers, --gunicorn-threads, --pool-size) apply to
the servers this script starts; the defaults are the repository's configuration.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import requests

from benchmarks import perf_fuzz, perf_inputs, perf_stats
from benchmarks.perf_stack import (
    Endpoints,
    Stack,
    clean_environ,
    rss_mib,
    scale_workers,
)
from stack.ports import free_ports

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "artifacts" / "bench"
DEFAULT_WEIGHTS = REPO_ROOT / "weights"
CLIENTS = (1, 4, 16, 64)
TARGETS = {
    "inproc_mlp": "in-process: preprocessing + MLP",
    "inproc_cnn": "in-process: preprocessing + CNN",
    "inproc_both": "in-process: preprocessing once + MLP + CNN",
    "ts_mlp": "TorchServe POST /predictions/mnist_mlp",
    "ts_cnn": "TorchServe POST /predictions/mnist_cnn",
    "ui": "gunicorn POST /api/predict (both models, multipart upload)",
}
RATIO_PAIRS = {
    "ts_mlp/inproc_mlp": ("ts_mlp", "inproc_mlp"),
    "ts_cnn/inproc_cnn": ("ts_cnn", "inproc_cnn"),
    "ui/inproc_both": ("ui", "inproc_both"),
}
MODEL_OF = {"mlp": "mnist_mlp", "cnn": "mnist_cnn"}
CONTENT_TYPES = {"mnist_png": "image/png", "canvas_png": "image/png", "phone_jpeg": "image/jpeg"}

log = logging.getLogger("perf")


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(package: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def java_version() -> str | None:
    """First line of `java -version`, or None when there is no java."""
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else None


def busy_processes(sample_s: float = 1.0, min_percent: float = 5.0) -> list[dict[str, Any]]:
    """Other processes using CPU right now (percent of one core), busiest first."""
    procs = list(psutil.process_iter(["pid", "name", "cmdline"]))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(sample_s)
    rows = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            percent = proc.cpu_percent(None)
            if percent >= min_percent and proc.pid != os.getpid():
                command = " ".join(proc.info["cmdline"] or [proc.info["name"] or ""])
                rows.append({"pid": proc.pid, "cpu_percent": percent, "command": command[:120]})
    return sorted(rows, key=lambda row: -row["cpu_percent"])


def machine_info() -> dict[str, Any]:
    """What the numbers were taken on, and how busy it was."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": version_of("torch"),
        "torchserve": version_of("torchserve"),
        "gunicorn": version_of("gunicorn"),
        "java": java_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "busy_processes_start": busy_processes(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------
# Requests and load jobs
# ---------------------------------------------------------------------------------------------


def multipart(data: bytes, filename: str, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the image in field `file`, and its Content-Type."""
    boundary = f"----perf{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an http URL."""
    rest = url.split("://", 1)[1].split("/", 1)[0]
    host, port = rest.rsplit(":", 1)
    return host, int(port)


def write_ui_body(input_name: str, data: bytes, folder: Path) -> tuple[Path, str]:
    """The multipart upload of one input, written to a file; returns it and its Content-Type."""
    suffix = ".jpg" if input_name.endswith("jpeg") else ".png"
    body, content_type = multipart(data, f"{input_name}{suffix}", CONTENT_TYPES[input_name])
    path = folder / f"{input_name}.multipart"
    path.write_bytes(body)
    return path, content_type


def http_job(url: str, path: str, headers: dict[str, str], body_file: Path, expect: str) -> dict:
    """A load job against one HTTP endpoint."""
    host, port = host_port(url)
    return {
        "kind": "http",
        "host": host,
        "port": port,
        "path": path,
        "headers": headers,
        "body_file": str(body_file),
        "expect": expect,
        "timeout": 15,
    }


def target_job(
    target: str,
    endpoints: Endpoints | None,
    input_name: str,
    files: Mapping[str, Path],
    weights: Mapping[str, Path],
    *,
    threads: int,
) -> dict[str, Any]:
    """The load job of one target on one input (cells added by the caller)."""
    if target.startswith("inproc_"):
        roles = ("mlp", "cnn") if target == "inproc_both" else (target.split("_", 1)[1],)
        return {
            "kind": "inprocess",
            "weights": {role: str(weights[role]) for role in roles},
            "body_file": str(files[input_name]),
            "threads": threads,
        }
    assert endpoints is not None
    if target.startswith("ts_"):
        model = MODEL_OF[target.split("_", 1)[1]]
        headers = {"Content-Type": "application/octet-stream", **endpoints.auth("inference")}
        job = http_job(
            endpoints.inference_url,
            f"/predictions/{model}",
            headers,
            files[input_name],
            '"prediction"',
        )
    else:
        body, content_type = files[f"{input_name}:ui"], files[f"{input_name}:ui-type"]
        job = http_job(
            endpoints.ui_url or "",
            "/api/predict",
            {"Content-Type": str(content_type)},
            body,
            '"ensemble_prediction"',
        )
    job["watch_pids"] = list(endpoints.pids.values())
    return job


def run_load(job: Mapping[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Run a load job in a child process; returns its raw cell results."""
    env = clean_environ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.perf_load"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def cells(clients: Sequence[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The cells of one job from the command line's budget."""
    return [
        {
            "clients": n,
            "max_requests": args.requests,
            "max_seconds": args.seconds,
            "warmup_seconds": args.warmup,
        }
        for n in clients
    ]


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def weights_paths(weights_dir: Path) -> dict[str, Path]:
    """The two checkpoints; fails early with the path when one is missing or does not load."""
    from recognition.models import load_checkpoint

    paths = {role: weights_dir / f"{MODEL_OF[role]}.pt" for role in MODEL_OF}
    for path in paths.values():
        if not path.is_file():
            raise SystemExit(f"missing checkpoint {path} (pass --weights-dir)")
        try:
            load_checkpoint(path)
        except Exception as exc:
            raise SystemExit(f"{path} does not load: {exc}") from exc
    return paths


def stack_for(args: argparse.Namespace, work_dir: Path) -> Stack:
    """A Stack configured from the tuning options."""
    model_settings: dict[str, Any] = {}
    if args.batch_size is not None:
        model_settings["batchSize"] = args.batch_size
    if args.max_batch_delay is not None:
        model_settings["maxBatchDelay"] = args.max_batch_delay
    worker_env = {}
    if args.omp_threads is not None:
        worker_env = {
            "OMP_NUM_THREADS": str(args.omp_threads),
            "MKL_NUM_THREADS": str(args.omp_threads),
        }
    ui_env = {}
    if args.gunicorn_workers is not None:
        ui_env["GUNICORN_WORKERS"] = str(args.gunicorn_workers)
    if args.gunicorn_threads is not None:
        ui_env["GUNICORN_THREADS"] = str(args.gunicorn_threads)
    if args.pool_size is not None:
        ui_env["WEBUI_POOL_SIZE"] = str(args.pool_size)
    ts_overrides = dict(item.split("=", 1) for item in args.ts_set)
    return Stack(
        work_dir,
        args.weights_dir,
        model_settings=model_settings,
        ts_overrides=ts_overrides,
        worker_env=worker_env,
        ui_env=ui_env,
        with_ui=not args.no_ui,
        ui_app=args.ui_app,
    )


@contextlib.contextmanager
def services(args: argparse.Namespace) -> Iterator[tuple[Endpoints, Stack | None]]:
    """The services under test: attached to (--attach) or started for this run and stopped."""
    if args.attach:
        key_file = Path(args.key_file) if args.key_file else None
        yield Endpoints.attach(args.ts_url, args.management_url, args.ui_url, key_file), None
        return
    with tempfile.TemporaryDirectory(prefix="mnist-perf-") as tmp:
        stack = stack_for(args, Path(tmp))
        with stack as endpoints:
            if args.workers:
                scale_workers(endpoints, worker_counts(args.workers))
            yield endpoints, stack


def worker_counts(items: Sequence[str]) -> dict[str, int]:
    """Worker counts by model from `N` (every model) or `MODEL=N` items."""
    counts: dict[str, int] = {}
    for item in items:
        if "=" in item:
            model, count = item.split("=", 1)
            if model not in MODEL_OF.values():
                raise SystemExit(f"--workers: unknown model {model!r}")
            counts[model] = int(count)
        else:
            counts.update(dict.fromkeys(MODEL_OF.values(), int(item)))
    return counts


def tuning_config(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs of this run as given (None: the repository's default)."""
    keys = (
        "workers",
        "batch_size",
        "max_batch_delay",
        "omp_threads",
        "gunicorn_workers",
        "gunicorn_threads",
        "pool_size",
        "baseline_threads",
        "ts_set",
        "ui_app",
    )
    return {key: getattr(args, key) for key in keys}


# ---------------------------------------------------------------------------------------------
# Bench
# ---------------------------------------------------------------------------------------------


def prepare_inputs(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generate the inputs, write them and their multipart uploads; (files, description)."""
    digit, label = perf_inputs.mnist_digit(args.data_root, args.index)
    inputs = perf_inputs.make_inputs(digit)
    files: dict[str, Any] = dict(perf_inputs.write_inputs(inputs, folder))
    described = {}
    for name, data in inputs.items():
        files[f"{name}:ui"], files[f"{name}:ui-type"] = write_ui_body(name, data, folder)
        described[name] = {"bytes": len(data), "label": label, "mnist_test_index": args.index}
    return files, described


def sample_answers(endpoints: Endpoints, files: Mapping[str, Any]) -> dict[str, Any]:
    """One answer per input from the UI, to show every path works on these inputs."""
    answers = {}
    for name in perf_inputs.INPUT_NAMES:
        if not endpoints.ui_url or name not in files:
            continue
        body = Path(files[f"{name}:ui"]).read_bytes()
        response = requests.post(
            f"{endpoints.ui_url}/api/predict",
            data=body,
            headers={"Content-Type": str(files[f"{name}:ui-type"])},
            timeout=30,
        )
        data = response.json()
        answers[name] = {
            "status": response.status_code,
            "ensemble_prediction": data.get("ensemble_prediction"),
            "mlp_prediction": data.get("mlp_prediction"),
            "cnn_prediction": data.get("cnn_prediction"),
        }
    return answers


def target_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run's numbers (missing cells are left out)."""
    res = report["results"]

    def cell(inp: str, target: str, clients: int) -> dict[str, Any] | None:
        return res.get(inp, {}).get(target, {}).get(str(clients))

    checks = []

    def add(name: str, value: float | None, limit: float, at_least: bool = False) -> None:
        if value is not None:
            met = perf_stats.check(value, limit, at_least)
            checks.append({"target": name, "value": value, "limit": limit, "met": met})

    ui1 = cell("mnist_png", "ui", 1)
    add("/api/predict p50, 28×28 PNG, 1 client (ms)", ui1 and ui1["p50_ms"], 8)
    ui1j = cell("phone_jpeg", "ui", 1)
    add("/api/predict p50, phone JPEG, 1 client (ms)", ui1j and ui1j["p50_ms"], 40)
    ui16 = cell("mnist_png", "ui", 16)
    if ui16:
        add("/api/predict req/s, 28×28 PNG, 16 clients", ui16["rps"], 250, at_least=True)
        add("/api/predict errors, 16 clients", ui16["errors"], 0)
        add("/api/predict p99, 28×28 PNG, 16 clients (ms)", ui16["p99_ms"], 150)
    for target in ("ts_mlp", "ts_cnn"):
        c16 = cell("mnist_png", target, 16)
        add(f"{target} req/s, 28×28 PNG, 16 clients", c16 and c16["rps"], 800, at_least=True)
        added = report["ratios"].get("mnist_png", {}).get(f"{target}/inproc_{target[3:]}", {})
        one = added.get("1") or {}
        add(f"{target} added p50 over in-process, 1 client (ms)", one.get("added_p50_ms"), 2)
    if report.get("cold_start_s") is not None:
        add("cold start: start → both models READY (s)", report["cold_start_s"], 20)
    return checks


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """The side-by-side benchmark; returns the report (also written to --out)."""
    report: dict[str, Any] = {"mode": "bench", "machine": machine_info()}
    report["config"] = {**tuning_config(args), "clients": args.clients, "seconds": args.seconds}
    report["config"].update(repeat=args.repeat, no_keepalive=args.no_keepalive)
    report["config"].update(
        max_requests=args.requests, warmup=args.warmup, server_warmup=args.server_warmup
    )
    report["targets_measured"] = {t: TARGETS[t] for t in args.targets}
    weights = weights_paths(args.weights_dir)
    with tempfile.TemporaryDirectory(prefix="mnist-perf-inputs-") as tmp:
        files, report["inputs"] = prepare_inputs(args, Path(tmp))
        needs_servers = any(not t.startswith("inproc_") for t in args.targets)
        context = services(args) if needs_servers else contextlib.nullcontext((None, None))
        with context as (endpoints, stack):
            if stack is not None:
                report["cold_start_s"] = round(stack.cold_start_s or 0.0, 2)
                report["ui_start_s"] = stack.ui_start_s and round(stack.ui_start_s, 2)
            if endpoints is not None:
                report["sample_answers"] = sample_answers(endpoints, files)
                report["rss_before_mib"] = rss_mib(list(endpoints.pids.values()))
            report["results"] = measure(args, endpoints, files, weights)
            if endpoints is not None:
                report["rss_after_mib"] = rss_mib(list(endpoints.pids.values()))
    summaries = {
        inp: {t: {int(c): s for c, s in cells_.items()} for t, cells_ in targets.items()}
        for inp, targets in report["results"].items()
    }
    report["ratios"] = {
        inp: _str_keys(perf_stats.ratios(summaries[inp], RATIO_PAIRS)) for inp in summaries
    }
    report["targets"] = target_checks(report)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["busy_processes_end"] = busy_processes()
    return report


def _str_keys(data: Mapping[str, Mapping[int, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {str(c): v for c, v in inner.items()} for k, inner in data.items()}


def warm_up_servers(
    args: argparse.Namespace,
    endpoints: Endpoints | None,
    files: Mapping[str, Any],
    weights: Mapping[str, Path],
) -> None:
    """Load every server target at 16 clients for --server-warmup seconds, unrecorded.

    A fresh JVM compiles TorchServe's hot paths during its first thousands of requests; without
    this, whichever cell runs first pays for the compiler's CPU.
    """
    if endpoints is None or args.server_warmup <= 0:
        return
    for target in (t for t in args.targets if not t.startswith("inproc_")):
        job = target_job(target, endpoints, args.inputs[0], files, weights, threads=1)
        cell = {"clients": 16, "max_requests": 10**9, "max_seconds": args.server_warmup}
        run_load({**job, "cells": [{**cell, "warmup_seconds": 0}]}, args.server_warmup + 120)


def measure(
    args: argparse.Namespace,
    endpoints: Endpoints | None,
    files: Mapping[str, Any],
    weights: Mapping[str, Path],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every (input, target) job --repeat times; summaries by input, target and client count.

    Repeats run one after the other over all jobs, so a disturbance (another job on the
    machine) lands in one repeat of many cells rather than in every repeat of one; each summary
    pools its repeats and lists the per-repeat p50 and req/s to show the spread.
    """
    raw: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    budget = len(args.clients) * (args.seconds + args.warmup + 30) + 120
    warm_up_servers(args, endpoints, files, weights)
    for repeat in range(args.repeat):
        for input_name in args.inputs:
            for target in args.targets:
                job = target_job(
                    target, endpoints, input_name, files, weights, threads=args.baseline_threads
                )
                job["cells"] = cells(args.clients, args)
                if args.no_keepalive and job["kind"] == "http":
                    job["headers"] = {**job["headers"], "Connection": "close"}
                for cell in run_load(job, budget):
                    raw.setdefault((input_name, target, cell["clients"]), []).append(cell)
                    log_cell(repeat, input_name, target, cell)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for (input_name, target, clients), runs in raw.items():
        summary = perf_stats.summarize(perf_stats.pool(runs))
        if len(runs) > 1:
            summaries = [perf_stats.summarize(run) for run in runs]
            summary["p50_ms_runs"] = [s["p50_ms"] for s in summaries]
            summary["rps_runs"] = [s["rps"] for s in summaries]
        results.setdefault(input_name, {}).setdefault(target, {})[str(clients)] = summary
    return results


def log_cell(repeat: int, input_name: str, target: str, cell: Mapping[str, Any]) -> None:
    """One line per measured cell."""
    s = perf_stats.summarize(cell)
    log.info(
        "#%d %-10s %-11s %2d clients: p50 %7.2f  p99 %7.2f ms  %7.1f req/s  %d errors",
        repeat + 1,
        input_name,
        target,
        cell["clients"],
        s["p50_ms"] or float("nan"),
        s["p99_ms"] or float("nan"),
        s["rps"] or 0.0,
        s["errors"],
    )


# ---------------------------------------------------------------------------------------------
# Cold start
# ---------------------------------------------------------------------------------------------


def cold_start(args: argparse.Namespace) -> dict[str, Any]:
    """Time `python -m scripts.torchserve_ctl start` (archives built) until both models READY."""
    report: dict[str, Any] = {"mode": "cold-start", "machine": machine_info(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="mnist-perf-cold-") as tmp:
        work = Path(tmp)
        store = Stack(work, args.weights_dir, with_ui=False).build()
        for run in range(args.repeat):
            ports = free_ports(5)
            names = ("INFERENCE", "MANAGEMENT", "METRICS")
            env = clean_environ(
                {
                    f"TS_{n}_ADDRESS": f"http://127.0.0.1:{p}"
                    for n, p in zip(names, ports, strict=False)
                }
            )
            env.update(
                {"TS_GRPC_INFERENCE_PORT": str(ports[3]), "TS_GRPC_MANAGEMENT_PORT": str(ports[4])}
            )
            ctl = [sys.executable, "-m", "scripts.torchserve_ctl"]
            where = ["--work-dir", str(work / f"ts{run}"), "--model-store", str(store)]
            start = time.perf_counter()
            result = subprocess.run(
                [*ctl, "start", *where, "--no-build"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            elapsed = time.perf_counter() - start
            subprocess.run(
                [*ctl, "stop", *where],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            ok = result.returncode == 0
            report["runs"].append({"run": run, "ok": ok, "seconds": round(elapsed, 2)})
            log.info(
                "cold start %d: %.2f s (%s)", run, elapsed, "ok" if ok else result.stderr[-500:]
            )
    times = [r["seconds"] for r in report["runs"] if r["ok"]]
    report["seconds"] = {
        "min": min(times, default=None),
        "median": perf_stats.percentile(times, 50),
        "max": max(times, default=None),
    }
    report["target_s"] = 20
    report["met"] = bool(times) and max(times) <= 20
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


# ---------------------------------------------------------------------------------------------
# Soak
# ---------------------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """16 clients for --minutes against /api/predict (the three inputs in turn), RSS tracked."""
    report: dict[str, Any] = {
        "mode": "soak",
        "machine": machine_info(),
        "config": tuning_config(args),
    }
    report["config"].update({"clients": args.soak_clients, "minutes": args.minutes})
    with tempfile.TemporaryDirectory(prefix="mnist-perf-soak-") as tmp:
        files, report["inputs"] = prepare_inputs(args, Path(tmp))
        with services(args) as (endpoints, _):
            bodies = [
                {
                    "file": str(files[f"{n}:ui"]),
                    "headers": {"Content-Type": str(files[f"{n}:ui-type"])},
                }
                for n in perf_inputs.INPUT_NAMES
            ]
            job = http_job(
                endpoints.ui_url or "",
                "/api/predict",
                {},
                Path(bodies[0]["file"]),
                '"ensemble_prediction"',
            )
            job.update({"bodies": bodies, "watch_pids": list(endpoints.pids.values())})
            # Warm up (fills pools, caches, JIT of the JVM) before the "before" sample.
            run_load(
                {
                    **job,
                    "cells": [
                        {
                            "clients": args.soak_clients,
                            "max_requests": 10**9,
                            "max_seconds": 15,
                            "warmup_seconds": 0,
                        }
                    ],
                },
                120,
            )
            pids = list(endpoints.pids.values())
            report["rss_before_mib"] = rss_mib(pids)
            report["minutes_detail"] = []
            for minute in range(args.minutes):
                cell = {
                    "clients": args.soak_clients,
                    "max_requests": 10**9,
                    "max_seconds": 60,
                    "warmup_seconds": 0,
                }
                (raw,) = run_load({**job, "cells": [cell]}, 300)
                summary = perf_stats.summarize(raw)
                summary["minute"] = minute + 1
                summary["rss_total_mib"] = round(sum(r["rss_mib"] for r in rss_mib(pids)), 1)
                report["minutes_detail"].append(summary)
                log.info(
                    "soak minute %d: %d requests, %d errors, p50 %.1f p99 %.1f ms, RSS %.0f MiB",
                    minute + 1,
                    summary["requests"],
                    summary["errors"],
                    summary["p50_ms"] or float("nan"),
                    summary["p99_ms"] or float("nan"),
                    summary["rss_total_mib"],
                )
            report["rss_after_mib"] = rss_mib(pids)
    report["summary"] = soak_summary(report)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def soak_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Totals of a soak run and the RSS change of every process (by pid)."""
    minutes = report["minutes_detail"]
    before = {r["pid"]: r for r in report["rss_before_mib"]}
    growth = []
    for row in report["rss_after_mib"]:
        first = before.get(row["pid"])
        if first:
            growth.append(
                {
                    "pid": row["pid"],
                    "process": row["process"],
                    "before_mib": first["rss_mib"],
                    "after_mib": row["rss_mib"],
                    "change_mib": round(row["rss_mib"] - first["rss_mib"], 1),
                }
            )
    gone = sorted(set(before) - {r["pid"] for r in report["rss_after_mib"]})
    return {
        "requests": sum(m["requests"] for m in minutes),
        "errors": sum(m["errors"] for m in minutes),
        "rps_per_minute": [m["rps"] for m in minutes],
        "p99_ms_per_minute": [m["p99_ms"] for m in minutes],
        "rss": growth,
        "processes_gone": gone,
    }


# ---------------------------------------------------------------------------------------------
# Fuzz
# ---------------------------------------------------------------------------------------------


def fuzz_seeds(digit_inputs: Mapping[str, bytes]) -> list[bytes]:
    """Seed files for mutation: the three inputs plus a GIF and a small JPEG of the digit."""
    from PIL import Image

    small = Image.open(io.BytesIO(digit_inputs["mnist_png"])).convert("L")
    extra = []
    for fmt, options in (("GIF", {}), ("JPEG", {"quality": 85})):
        buffer = io.BytesIO()
        small.resize((64, 64)).save(buffer, format=fmt, **options)
        extra.append(buffer.getvalue())
    return [
        digit_inputs["mnist_png"],
        digit_inputs["canvas_png"],
        *extra,
        digit_inputs["phone_jpeg"],
    ]


def fuzz_one(
    session: requests.Session, url: str, number: int, name: str, data: bytes, *, timeout: float
) -> dict[str, Any]:
    """POST one mutant as a multipart upload; its status, time and whether the answer is JSON."""
    start = time.perf_counter()
    try:
        response = session.post(
            url, files={"file": (f"fuzz{number}.png", data, "image/png")}, timeout=timeout
        )
        status = response.status_code
        try:
            body = response.json()
            is_json = isinstance(body, dict) and (status == 200 or "error" in body)
        except ValueError:
            is_json = False
    except requests.RequestException as exc:
        status, is_json = 0, False
        name = f"{name} ({type(exc).__name__})"
    return {
        "number": number,
        "mutation": name,
        "status": status,
        "json": is_json,
        "seconds": time.perf_counter() - start,
        "bytes": len(data),
    }


def fuzz(args: argparse.Namespace) -> dict[str, Any]:
    """Thousands of mutated PNG/JPEG/GIF files through /api/predict: no 5xx, bounded time."""
    report: dict[str, Any] = {
        "mode": "fuzz",
        "machine": machine_info(),
        "count": args.count,
        "seed_start": args.start,
    }
    digit, _ = perf_inputs.mnist_digit(args.data_root, args.index)
    seeds = fuzz_seeds(perf_inputs.make_inputs(digit))
    with services(args) as (endpoints, _):
        pids = list(endpoints.pids.values())
        report["rss_before_mib"] = rss_mib(pids)
        url = f"{endpoints.ui_url}/api/predict"
        rows = []
        start = time.perf_counter()
        with (
            requests.Session() as session,
            concurrent.futures.ThreadPoolExecutor(args.fuzz_clients) as pool,
        ):
            futures = [
                pool.submit(fuzz_one, session, url, number, name, data, timeout=args.max_seconds)
                for number, name, data in perf_fuzz.mutants(seeds, args.count, args.start)
            ]
            rows = [f.result() for f in futures]
        report["elapsed_s"] = round(time.perf_counter() - start, 1)
        report["rss_after_mib"] = rss_mib(pids)
        good = requests.post(url, files={"file": ("ok.png", seeds[0], "image/png")}, timeout=10)
        report["still_serving"] = good.status_code == 200
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[str(row["status"])] = statuses.get(str(row["status"]), 0) + 1
    bad = [
        r
        for r in rows
        if r["status"] >= 500
        or r["status"] == 0
        or not r["json"]
        or r["seconds"] > args.max_seconds
    ]
    times = [r["seconds"] * 1000 for r in rows]
    report.update(
        {
            "statuses": statuses,
            "failures": bad[:50],
            "failure_count": len(bad),
            "latency_ms": {
                f"p{q}": round(perf_stats.percentile(times, q) or 0, 1) for q in (50, 99)
            },
            "max_ms": round(max(times, default=0), 1),
            "ok": not bad and report["still_serving"],
        }
    )
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults in brackets)."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "mode", nargs="?", default="bench", choices=("bench", "cold-start", "soak", "fuzz")
    )
    p.add_argument("--data-root", default=None, help="MNIST root [$MNIST_ROOT]")
    p.add_argument(
        "--index", type=int, default=perf_inputs.DEFAULT_INDEX, help="MNIST test image [0]"
    )
    p.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS, help="[weights/]")
    p.add_argument(
        "--out", type=Path, default=None, help="JSON output [artifacts/bench/<mode>.json]"
    )
    p.add_argument("--plot", type=Path, default=None, help="plot of bench mode [<out>.png]")
    g = p.add_argument_group("bench")
    g.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="[1 4 16 64]")
    g.add_argument(
        "--inputs",
        nargs="+",
        default=list(perf_inputs.INPUT_NAMES),
        choices=perf_inputs.INPUT_NAMES,
    )
    g.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    g.add_argument("--seconds", type=float, default=10.0, help="longest time per cell [10]")
    g.add_argument("--requests", type=int, default=5000, help="most requests per cell [5000]")
    g.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell [1]")
    g.add_argument(
        "--server-warmup",
        type=float,
        default=5.0,
        help="seconds of load per server target first [5]",
    )
    g.add_argument(
        "--no-keepalive", action="store_true", help="a new connection per request (comparison)"
    )
    g.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="bench: passes over all cells, pooled [1]; cold-start: starts [3]",
    )
    g.add_argument("--quick", action="store_true", help="2 s, 600 requests, 0.5 s warm-up per cell")
    g.add_argument("--baseline-threads", type=int, default=1, help="torch threads in-process [1]")
    t = p.add_argument_group("tuning (servers this script starts)")
    t.add_argument(
        "--workers",
        nargs="+",
        default=None,
        metavar="N|MODEL=N",
        help="workers of every model, or per model: mnist_cnn=2 [config/models]",
    )
    t.add_argument("--batch-size", type=int, default=None, help="batchSize [config/models]")
    t.add_argument(
        "--max-batch-delay", type=int, default=None, help="maxBatchDelay ms [config/models]"
    )
    t.add_argument("--omp-threads", type=int, default=None, help="torch threads per worker [1]")
    t.add_argument("--gunicorn-workers", type=int, default=None, help="[config/gunicorn.conf.py]")
    t.add_argument("--gunicorn-threads", type=int, default=None, help="[config/gunicorn.conf.py]")
    t.add_argument(
        "--pool-size", type=int, default=None, help="UI keep-alive pool [webui/config.py]"
    )
    t.add_argument(
        "--ts-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra TorchServe config.properties setting (repeatable)",
    )
    t.add_argument(
        "--ui-app", default="webui:create_app()", help="gunicorn app spec [webui:create_app()]"
    )
    t.add_argument(
        "--no-ui", action="store_true", help="start TorchServe only (targets ts_*, inproc_*)"
    )
    a = p.add_argument_group("running services")
    a.add_argument("--attach", action="store_true", help="measure running services, start nothing")
    a.add_argument("--ts-url", default="http://127.0.0.1:8080")
    a.add_argument("--management-url", default="http://127.0.0.1:8081")
    a.add_argument("--ui-url", default="http://127.0.0.1:5000")
    a.add_argument("--key-file", default=str(REPO_ROOT / "run" / "torchserve" / "key_file.json"))
    o = p.add_argument_group("cold-start, soak, fuzz")
    o.add_argument("--minutes", type=int, default=5, help="soak minutes [5]")
    o.add_argument("--soak-clients", type=int, default=16, help="[16]")
    o.add_argument("--count", type=int, default=3000, help="fuzz inputs [3000]")
    o.add_argument("--start", type=int, default=0, help="first fuzz mutant number [0]")
    o.add_argument("--fuzz-clients", type=int, default=4, help="[4]")
    o.add_argument(
        "--max-seconds", type=float, default=5.0, help="slowest answer allowed in fuzz [5]"
    )
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.mode == "cold-start" else 1
    if args.quick:
        args.seconds, args.requests, args.warmup, args.server_warmup = 2.0, 600, 0.5, 2.0
    if args.no_ui and "ui" in args.targets:
        args.targets = [t for t in args.targets if t != "ui"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one mode, write its JSON (and plot), print a summary."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    modes = {"bench": bench, "cold-start": cold_start, "soak": soak, "fuzz": fuzz}
    report = modes[args.mode](args)
    out = (
        args.out
        or DEFAULT_OUT / f"{'perf' if args.mode == 'bench' else args.mode.replace('-', '')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    if args.mode == "bench":
        from benchmarks.perf_plot import plot

        print(f"wrote {plot(report, args.plot or out.with_suffix('.png'))}")
        for check_ in report["targets"]:
            mark = "met" if check_["met"] else "MISSED"
            print(f"  {mark:6} {check_['target']}: {check_['value']} (limit {check_['limit']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
