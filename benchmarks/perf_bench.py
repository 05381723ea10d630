"""Bench mode: every (input, target, clients) cell, pooled over repeats, ratios and targets."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from benchmarks import perf_stats
from benchmarks.perf_jobs import cell, cells, prepare_inputs, run_load, target_job
from benchmarks.perf_machine import busy_processes, finish, new_report
from benchmarks.perf_services import services, tuning_config, weights_paths
from benchmarks.perf_settings import TARGETS, Settings
from benchmarks.perf_stack import Endpoints, rss_mib
from evalsets import bench_inputs
from recognition.catalog import ARCHS

RATIO_PAIRS = {
    "ts_mlp/inproc_mlp": ("ts_mlp", "inproc_mlp"),
    "ts_cnn/inproc_cnn": ("ts_cnn", "inproc_cnn"),
    "ui/inproc_both": ("ui", "inproc_both"),
}
ANSWER_KEYS = ("ensemble_prediction", *(f"{arch}_prediction" for arch in ARCHS), "number")
BENCH_CONFIG = ("clients", "seconds", "repeat", "no_keepalive", "warmup", "server_warmup")

log = logging.getLogger("perf")


def sample_answers(endpoints: Endpoints, files: Mapping[str, Any]) -> dict[str, Any]:
    """One answer per input from the UI, to show every path works on these inputs."""
    answers = {}
    for name in bench_inputs.INPUT_NAMES:
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
        answers[name] = {"status": response.status_code, **{k: data.get(k) for k in ANSWER_KEYS}}
    return answers


def target_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run's numbers (missing cells are left out)."""
    res = report["results"]

    def at(inp: str, target: str, clients: int) -> dict[str, Any] | None:
        return res.get(inp, {}).get(target, {}).get(str(clients))

    checks = []

    def add(name: str, value: float | None, limit: float, at_least: bool = False) -> None:
        if value is not None:
            met = perf_stats.check(value, limit, at_least)
            checks.append({"target": name, "value": value, "limit": limit, "met": met})

    ui1 = at("mnist_png", "ui", 1)
    add("/api/predict p50, 28×28 PNG, 1 client (ms)", ui1 and ui1["p50_ms"], 8)
    ui1j = at("phone_jpeg", "ui", 1)
    add("/api/predict p50, phone JPEG, 1 client (ms)", ui1j and ui1j["p50_ms"], 40)
    ui1n = at("phone_number_jpeg", "ui", 1)
    add("/api/predict p50, 6-digit phone JPEG, 1 client (ms)", ui1n and ui1n["p50_ms"], 60)
    ui16 = at("mnist_png", "ui", 16)
    if ui16:
        add("/api/predict req/s, 28×28 PNG, 16 clients", ui16["rps"], 250, at_least=True)
        add("/api/predict errors, 16 clients", ui16["errors"], 0)
        add("/api/predict p99, 28×28 PNG, 16 clients (ms)", ui16["p99_ms"], 150)
    for target in ("ts_mlp", "ts_cnn"):
        c16 = at("mnist_png", target, 16)
        add(f"{target} req/s, 28×28 PNG, 16 clients", c16 and c16["rps"], 800, at_least=True)
        added = report["ratios"].get("mnist_png", {}).get(f"{target}/inproc_{target[3:]}", {})
        one = added.get("1") or {}
        add(f"{target} added p50 over in-process, 1 client (ms)", one.get("added_p50_ms"), 2)
    if report.get("cold_start_s") is not None:
        add("cold start: start → both models READY (s)", report["cold_start_s"], 20)
    return checks


def bench(settings: Settings) -> dict[str, Any]:
    """The side-by-side benchmark; returns the report (also written to --out)."""
    report = new_report("bench", config=tuning_config(settings))
    report["config"].update({key: getattr(settings, key) for key in BENCH_CONFIG})
    report["config"]["max_requests"] = settings.requests
    report["targets_measured"] = {t: TARGETS[t] for t in settings.targets}
    weights = weights_paths(settings.weights_dir)
    with tempfile.TemporaryDirectory(prefix="mnist-perf-inputs-") as tmp:
        files, report["inputs"] = prepare_inputs(settings, Path(tmp))
        needs_servers = any(not t.startswith("inproc_") for t in settings.targets)
        context = services(settings) if needs_servers else contextlib.nullcontext((None, None))
        with context as (endpoints, stack):
            if stack is not None:
                report["cold_start_s"] = round(stack.cold_start_s or 0.0, 2)
                report["ui_start_s"] = stack.ui_start_s and round(stack.ui_start_s, 2)
            if endpoints is not None:
                report["sample_answers"] = sample_answers(endpoints, files)
                report["rss_before_mib"] = rss_mib(list(endpoints.pids.values()))
            report["results"] = measure(settings, endpoints, files, weights)
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
    report["machine"]["busy_processes_end"] = busy_processes()
    return finish(report)


def _str_keys(data: Mapping[str, Mapping[int, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {str(c): v for c, v in inner.items()} for k, inner in data.items()}


def warm_up_servers(
    settings: Settings,
    endpoints: Endpoints | None,
    files: Mapping[str, Any],
    weights: Mapping[str, Path],
) -> None:
    """Load every server target at 16 clients for --server-warmup seconds, unrecorded.

    A fresh JVM compiles TorchServe's hot paths during its first thousands of requests; without
    this, whichever cell runs first pays for the compiler's CPU.
    """
    if endpoints is None or settings.server_warmup <= 0:
        return
    for target in (t for t in settings.targets if not t.startswith("inproc_")):
        job = target_job(target, endpoints, settings.inputs[0], files, weights, threads=1)
        run_load({**job, "cells": [cell(16, settings.server_warmup)]}, settings.server_warmup + 120)


def measure(
    settings: Settings,
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
    budget = len(settings.clients) * (settings.seconds + settings.warmup + 30) + 120
    warm_up_servers(settings, endpoints, files, weights)
    for repeat in range(settings.repeat):
        for input_name in settings.inputs:
            for target in settings.targets:
                job = target_job(
                    target, endpoints, input_name, files, weights, threads=settings.baseline_threads
                )
                job["cells"] = cells(settings.clients, settings)
                if settings.no_keepalive and job["kind"] == "http":
                    job["headers"] = {**job["headers"], "Connection": "close"}
                for result in run_load(job, budget):
                    raw.setdefault((input_name, target, result["clients"]), []).append(result)
                    log_cell(repeat, input_name, target, result)
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
