"""Cold-start mode: time `python -m scripts.torchserve_ctl start` until both models are READY."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import perf_stats
from benchmarks.perf_machine import finish, new_report
from benchmarks.perf_settings import REPO_ROOT, Settings
from benchmarks.perf_stack import Stack
from stack.gunicorn import clean_environ
from stack.ports import loopback_environ

log = logging.getLogger("perf")


def cold_start(settings: Settings) -> dict[str, Any]:
    """Time `python -m scripts.torchserve_ctl start` (archives built) until both models READY."""
    report = new_report("cold-start", runs=[])
    with tempfile.TemporaryDirectory(prefix="mnist-perf-cold-") as tmp:
        work = Path(tmp)
        store = Stack(work, settings.weights_dir, with_ui=False).build()
        for run in range(settings.repeat):
            env = clean_environ(loopback_environ())
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
    return finish(report)
