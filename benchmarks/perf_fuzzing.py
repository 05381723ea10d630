"""Fuzz mode: seeded mutants of the inputs through /api/predict: never a 5xx, always in time."""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from typing import Any

import requests

from benchmarks import perf_stats
from benchmarks.perf_machine import finish, new_report
from benchmarks.perf_services import services
from benchmarks.perf_settings import Settings
from benchmarks.perf_stack import rss_mib
from evalsets import bench_inputs
from evalsets.mutants import mutants, seed_files


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


def fuzz_verdict(rows: list[dict[str, Any]], max_seconds: float) -> dict[str, Any]:
    """Statuses, failures (5xx, no answer, not JSON, too slow) and latency of the fuzz answers."""
    statuses = Counter(str(row["status"]) for row in rows)
    bad = [
        r
        for r in rows
        if r["status"] >= 500 or r["status"] == 0 or not r["json"] or r["seconds"] > max_seconds
    ]
    times = [r["seconds"] * 1000 for r in rows]
    return {
        "statuses": dict(statuses),
        "failures": bad[:50],
        "failure_count": len(bad),
        "latency_ms": {f"p{q}": round(perf_stats.percentile(times, q) or 0, 1) for q in (50, 99)},
        "max_ms": round(max(times, default=0), 1),
    }


def fuzz(settings: Settings) -> dict[str, Any]:
    """Thousands of mutated PNG/JPEG/GIF files through /api/predict: no 5xx, bounded time."""
    report = new_report("fuzz", count=settings.count, seed_start=settings.start)
    digit, _ = bench_inputs.mnist_digit(settings.data_root, settings.index)
    seeds = seed_files(bench_inputs.make_inputs(digit))
    with services(settings) as (endpoints, _):
        pids = list(endpoints.pids.values())
        report["rss_before_mib"] = rss_mib(pids)
        url = f"{endpoints.ui_url}/api/predict"
        start = time.perf_counter()
        with (
            requests.Session() as session,
            concurrent.futures.ThreadPoolExecutor(settings.fuzz_clients) as pool,
        ):
            futures = [
                pool.submit(fuzz_one, session, url, n, name, data, timeout=settings.max_seconds)
                for n, name, data in mutants(seeds, settings.count, settings.start)
            ]
            rows = [f.result() for f in futures]
        report["elapsed_s"] = round(time.perf_counter() - start, 1)
        report["rss_after_mib"] = rss_mib(pids)
        good = requests.post(url, files={"file": ("ok.png", seeds[0], "image/png")}, timeout=10)
        report["still_serving"] = good.status_code == 200
    report.update(fuzz_verdict(rows, settings.max_seconds))
    report["ok"] = not report["failure_count"] and report["still_serving"]
    return finish(report)
