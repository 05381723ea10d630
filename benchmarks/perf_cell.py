"""One measured cell of closed-loop load, with the CPU every party used while it ran.

A load process (`benchmarks.perf_load` for HTTP targets, `benchmarks.perf_inproc` for the
in-process baseline) builds a phase, a function running N clients until a Recorder says stop,
and hands it to `serve_job`: a job as JSON on stdin, the cells' results as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

MAX_ERROR_SAMPLES = 5


@dataclass
class Cell:
    """One measurement: `clients` concurrent clients until `max_requests` or `max_seconds`."""

    clients: int
    max_requests: int
    max_seconds: float
    warmup_seconds: float = 1.0


@dataclass
class CellResult:
    """What one cell measured; latencies of good answers only, in milliseconds."""

    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    error_latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)


class Recorder:
    """Thread-safe tally of one cell: request budget, latencies, statuses, error samples."""

    def __init__(self, max_requests: int, deadline: float) -> None:
        self.remaining = max_requests
        self.deadline = deadline
        self.lock = threading.Lock()
        self.result = CellResult(clients=0)
        self.statuses: Counter[str] = Counter()

    def take(self) -> bool:
        """Reserve one request of the budget; False when the budget or the time is spent."""
        with self.lock:
            if self.remaining <= 0 or time.monotonic() >= self.deadline:
                return False
            self.remaining -= 1
            return True

    def record(self, status: str, ms: float, ok: bool, detail: str = "") -> None:
        """Count one finished request."""
        with self.lock:
            self.statuses[status] += 1
            if ok:
                self.result.latencies_ms.append(ms)
                return
            self.result.errors += 1
            self.result.error_latencies_ms.append(ms)
            if len(self.result.error_samples) < MAX_ERROR_SAMPLES:
                self.result.error_samples.append(f"{status}: {detail[:200]}")


def process_kind(proc: psutil.Process) -> str:
    """What a server process is: torchserve-frontend, torchserve-worker, gunicorn or its name."""
    cmd = " ".join(proc.cmdline())
    if "org.pytorch.serve.ModelServer" in cmd:
        return "torchserve-frontend"
    if "model_service_worker" in cmd:
        return "torchserve-worker"
    if "gunicorn" in cmd or "mnist-serve-webui" in cmd:
        return "gunicorn"
    return proc.name()


def cpu_seconds(pids: Iterable[int]) -> dict[str, float]:
    """User + system CPU seconds of processes and their descendants, by kind of process."""
    totals: dict[str, float] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            try:
                times = p.cpu_times()
                kind = process_kind(p)
            except psutil.Error:
                continue
            totals[kind] = totals.get(kind, 0.0) + times.user + times.system
    return totals


def machine_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot.

    Steal is time a virtual CPU was ready but the host ran something else: on a shared host,
    a cell with much of it measured the neighbours too.
    """
    times = psutil.cpu_times()
    steal = getattr(times, "steal", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)  # already in user
    return sum(times) - idle - steal - guest, steal


def run_cell(phase: Callable[[int, Recorder], None], cell: Cell, watch: list[int]) -> CellResult:
    """Warm up, then measure one cell."""
    if cell.warmup_seconds > 0:
        phase(
            cell.clients, Recorder(10 * cell.max_requests, time.monotonic() + cell.warmup_seconds)
        )
    own, server, (busy, steal) = time.process_time(), cpu_seconds(watch), machine_seconds()
    rec = Recorder(cell.max_requests, time.monotonic() + cell.max_seconds)
    start = time.perf_counter()
    phase(cell.clients, rec)
    result = rec.result
    result.elapsed_s = time.perf_counter() - start
    result.clients = cell.clients
    result.statuses = dict(rec.statuses)
    after = cpu_seconds(watch)
    result.cpu_s = {
        "loadgen": time.process_time() - own,
        **{kind: seconds - server.get(kind, 0.0) for kind, seconds in after.items()},
        "machine": machine_seconds()[0] - busy,
        "steal": machine_seconds()[1] - steal,
    }
    return result


Phase = Callable[[int, Recorder], None]


def serve_job(make_phase: Callable[[dict[str, Any]], Phase]) -> int:
    """Read a job as JSON on stdin, run its cells in order, write their results on stdout."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    job = json.load(sys.stdin)
    phase = make_phase(job)
    watch = [int(pid) for pid in job.get("watch_pids", [])]
    results = [asdict(run_cell(phase, Cell(**cell), watch)) for cell in job["cells"]]
    json.dump(results, sys.stdout)
    return 0
