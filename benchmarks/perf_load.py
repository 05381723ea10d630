"""Closed-loop load generator for benchmarks/perf.py, run in its own process.

    python -m benchmarks.perf_load < job.json > results.json

A job is one target and its cells (client counts). Each client sends a request, waits for the
answer, and sends the next, until the cell's request budget or time is spent; a warm-up phase
before each cell is not recorded. Targets:

    {"kind": "http", "host": ..., "port": ..., "method": "POST", "path": ..., "headers": {...},
     "body_file": ..., "expect": "<text a good answer contains>", "timeout": 10}
    {"kind": "inprocess", "weights": {"mlp": path, "cnn": path}, "body_file": ..., "threads": 1}

HTTP clients are asyncio coroutines writing pre-built requests on keep-alive connections: about
a tenth of a millisecond of CPU per request, so the load generator takes little of the CPU the
server needs. In-process clients are threads calling preprocessing and the models directly.
Every cell also reports the CPU seconds the load generator, each kind of watched server process and
the whole machine used while it ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
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


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def build_request(
    method: str, host: str, port: int, path: str, *, headers: dict[str, str], body: bytes
) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one response: Content-Length, chunked, or until EOF."""
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(part[:-2] for part in parts)
    else:
        return status, await reader.read(), False
    return status, body, headers.get("connection", "").lower() != "close"


async def http_client(
    host: str, port: int, requests: list[bytes], *, expect: bytes, timeout: float, rec: Recorder
) -> None:
    """One client: requests back to back on a keep-alive connection, reconnecting when closed.

    With several requests it sends them in turn.
    """
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    sent = 0
    while rec.take():
        request = requests[sent % len(requests)]
        sent += 1
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout
                )
            writer.write(request)
            status, body, keep = await asyncio.wait_for(read_response(reader), timeout)
            ms = 1000 * (time.perf_counter() - start)
            ok = status == 200 and expect in body
            rec.record(str(status), ms, ok, body.decode("utf-8", "replace"))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            rec.record(type(exc).__name__, 1000 * (time.perf_counter() - start), False, str(exc))
            keep = False
        if not keep and writer is not None:
            writer.close()
            writer = reader = None
    if writer is not None:
        writer.close()


def _rotate(items: list[bytes], start: int) -> list[bytes]:
    start %= len(items)
    return items[start:] + items[:start]


async def _http_phase(
    job: dict[str, Any], requests: list[bytes], clients: int, rec: Recorder
) -> None:
    expect = job.get("expect", "").encode()
    timeout = job.get("timeout", 10)
    await asyncio.gather(
        *(
            # Client i starts at the i-th request, so a mix is sent in every proportion at once.
            http_client(
                job["host"],
                job["port"],
                _rotate(requests, i),
                expect=expect,
                timeout=timeout,
                rec=rec,
            )
            for i in range(clients)
        )
    )


def http_phase(job: dict[str, Any]) -> Callable[[int, Recorder], None]:
    """A function running `clients` HTTP clients against the job's target until `rec` stops.

    `body_file` (one body) or `body_files` (bodies sent in turn) with `headers`, or `bodies`:
    a list of {"file": ..., "headers": {...}} when the bodies need different headers.
    """
    bodies = job.get("bodies") or [
        {"file": name, "headers": job["headers"]}
        for name in job.get("body_files") or [job["body_file"]]
    ]
    requests = [
        build_request(
            job.get("method", "POST"),
            job["host"],
            job["port"],
            job["path"],
            headers=body["headers"],
            body=Path(body["file"]).read_bytes(),
        )
        for body in bodies
    ]
    return lambda clients, rec: asyncio.run(_http_phase(job, requests, clients, rec))


# ---------------------------------------------------------------------------------------------
# In process
# ---------------------------------------------------------------------------------------------


def inprocess_predictor(weights: dict[str, str], threads: int) -> Callable[[bytes], list[int]]:
    """Preprocess once, then every model's forward pass and softmax: what a plain app would do."""
    import cv2
    import numpy as np
    import torch

    from recognition.models import load_checkpoint
    from recognition.preprocessing import normalize, preprocess

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)  # as the TorchServe workers do (handlers/mnist_handler.py)
    models = [load_checkpoint(path)[0].eval() for path in weights.values()]

    def predict(data: bytes) -> list[int]:
        batch = torch.from_numpy(normalize(preprocess(data))[np.newaxis, np.newaxis])
        with torch.inference_mode():
            return [int(torch.softmax(model(batch), dim=1).argmax()) for model in models]

    return predict


def inprocess_phase(job: dict[str, Any]) -> Callable[[int, Recorder], None]:
    """A function running `clients` threads calling the models in this process."""
    from recognition.preprocessing import ImageError

    body = Path(job["body_file"]).read_bytes()
    predict = inprocess_predictor(job["weights"], int(job.get("threads", 1)))

    def client(rec: Recorder) -> None:
        while rec.take():
            start = time.perf_counter()
            try:
                predict(body)
                rec.record("200", 1000 * (time.perf_counter() - start), True)
            except ImageError as exc:
                rec.record(str(exc.status), 1000 * (time.perf_counter() - start), False, str(exc))

    def phase(clients: int, rec: Recorder) -> None:
        workers = [threading.Thread(target=client, args=(rec,)) for _ in range(clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return phase


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


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


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell of a job, in order."""
    phase = http_phase(job) if job["kind"] == "http" else inprocess_phase(job)
    watch = [int(pid) for pid in job.get("watch_pids", [])]
    return [asdict(run_cell(phase, Cell(**cell), watch)) for cell in job["cells"]]


def main() -> int:
    """Read a job as JSON on stdin, write the cells' results as JSON on stdout."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    job = json.load(sys.stdin)
    json.dump(run_job(job), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
