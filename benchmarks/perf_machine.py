"""What a perf run was measured on: CPU, versions, memory, load and the other busy processes."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil


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


def new_report(mode: str, **fields: Any) -> dict[str, Any]:
    """The start of a mode's report: its name and the machine as it is now."""
    return {"mode": mode, "machine": machine_info(), **fields}


def finish(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the machine's load average at the end of the run added."""
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report
