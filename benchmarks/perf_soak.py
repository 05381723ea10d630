"""Soak mode: minutes of 16 clients on /api/predict, latency per minute, RSS of every process."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks import perf_stats
from benchmarks.perf_jobs import cell, http_job, prepare_inputs, run_load, ui_bodies
from benchmarks.perf_machine import finish, new_report
from benchmarks.perf_services import services, tuning_config
from benchmarks.perf_settings import Settings
from benchmarks.perf_stack import rss_mib

WARMUP_S = 15  # fills pools, caches and the JVM's compiled code before the "before" sample

log = logging.getLogger("perf")


def soak_minute(job: Mapping[str, Any], clients: int, minute: int, pids: list[int]) -> dict:
    """One minute of load: its summary with the total RSS of the watched processes after it."""
    (raw,) = run_load({**job, "cells": [cell(clients, 60)]}, 300)
    summary = perf_stats.summarize(raw)
    summary["minute"] = minute
    summary["rss_total_mib"] = round(sum(r["rss_mib"] for r in rss_mib(pids)), 1)
    log.info(
        "soak minute %d: %d requests, %d errors, p50 %.1f p99 %.1f ms, RSS %.0f MiB",
        minute,
        summary["requests"],
        summary["errors"],
        summary["p50_ms"] or float("nan"),
        summary["p99_ms"] or float("nan"),
        summary["rss_total_mib"],
    )
    return summary


def soak(settings: Settings) -> dict[str, Any]:
    """16 clients for --minutes against /api/predict (the three inputs in turn), RSS tracked."""
    report = new_report("soak", config=tuning_config(settings))
    report["config"].update({"clients": settings.soak_clients, "minutes": settings.minutes})
    with tempfile.TemporaryDirectory(prefix="mnist-perf-soak-") as tmp:
        files, report["inputs"] = prepare_inputs(settings, Path(tmp))
        with services(settings) as (endpoints, _):
            bodies = ui_bodies(files)
            pids = list(endpoints.pids.values())
            job = http_job(
                endpoints.ui_url or "",
                "/api/predict",
                {},
                Path(bodies[0]["file"]),
                '"ensemble_prediction"',
            )
            job.update({"bodies": bodies, "watch_pids": pids})
            run_load({**job, "cells": [cell(settings.soak_clients, WARMUP_S)]}, 120)
            report["rss_before_mib"] = rss_mib(pids)
            report["minutes_detail"] = [
                soak_minute(job, settings.soak_clients, minute + 1, pids)
                for minute in range(settings.minutes)
            ]
            report["rss_after_mib"] = rss_mib(pids)
    report["summary"] = soak_summary(report)
    return finish(report)


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
