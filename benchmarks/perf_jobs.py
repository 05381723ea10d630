"""Load jobs for benchmarks/perf_load.py and perf_inproc.py: inputs, requests, cells, running."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.perf_settings import REPO_ROOT, Settings
from benchmarks.perf_stack import Endpoints
from evalsets import bench_inputs
from recognition.catalog import ARCHS, spec
from stack.gunicorn import clean_environ

CONTENT_TYPES = {
    "mnist_png": "image/png",
    "canvas_png": "image/png",
    "phone_jpeg": "image/jpeg",
    "phone_number_jpeg": "image/jpeg",
}
UI_EXPECT = '"ensemble_prediction"'  # in every good answer of /api/predict
LOADERS = {"http": "benchmarks.perf_load", "inprocess": "benchmarks.perf_inproc"}


def multipart(
    data: bytes, filename: str, content_type: str, boundary: str | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body with the image in field `file`, and its Content-Type (a fresh
    boundary unless one is given)."""
    boundary = boundary or f"----perf{uuid.uuid4().hex}"
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
        roles = ARCHS if target == "inproc_both" else (target.split("_", 1)[1],)
        return {
            "kind": "inprocess",
            "weights": {role: str(weights[role]) for role in roles},
            "body_file": str(files[input_name]),
            "threads": threads,
        }
    assert endpoints is not None
    if target.startswith("ts_"):
        headers = {"Content-Type": "application/octet-stream", **endpoints.auth("inference")}
        path = f"/predictions/{spec(target.split('_', 1)[1]).name}"
        job = http_job(endpoints.inference_url, path, headers, files[input_name], '"prediction"')
    else:
        headers = {"Content-Type": str(files[f"{input_name}:ui-type"])}
        upload = files[f"{input_name}:ui"]
        job = http_job(endpoints.ui_url or "", "/api/predict", headers, upload, UI_EXPECT)
    job["watch_pids"] = list(endpoints.pids.values())
    return job


def run_load(job: Mapping[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Run a load job in a child process (HTTP or in-process load); returns its raw cells."""
    env = clean_environ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    result = subprocess.run(
        [sys.executable, "-m", LOADERS[job["kind"]]],
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


def cell(clients: int, seconds: float, requests: int = 10**9, warmup: float = 0.0) -> dict:
    """One cell of a load job: `clients` clients until `requests` or `seconds`, after `warmup`."""
    return {
        "clients": clients,
        "max_requests": requests,
        "max_seconds": seconds,
        "warmup_seconds": warmup,
    }


def cells(clients: Sequence[int], settings: Settings) -> list[dict[str, Any]]:
    """The cells of one job from the command line's budget."""
    return [cell(n, settings.seconds, settings.requests, settings.warmup) for n in clients]


def prepare_inputs(settings: Settings, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generate the inputs, write them and their multipart uploads; (files, description)."""
    digit, label = bench_inputs.mnist_digit(settings.data_root, settings.index)
    number, read = bench_inputs.mnist_number(settings.data_root)
    inputs = bench_inputs.make_inputs(digit, number)
    files: dict[str, Any] = dict(bench_inputs.write_inputs(inputs, folder))
    described = {}
    for name, data in inputs.items():
        files[f"{name}:ui"], files[f"{name}:ui-type"] = write_ui_body(name, data, folder)
        described[name] = {"bytes": len(data), "label": label, "mnist_test_index": settings.index}
    described["phone_number_jpeg"] |= {
        "label": read,
        "mnist_test_index": list(bench_inputs.NUMBER_INDICES),
    }
    return files, described


def ui_bodies(files: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The multipart uploads of the three inputs with their headers, to send in turn."""
    return [
        {"file": str(files[f"{n}:ui"]), "headers": {"Content-Type": str(files[f"{n}:ui-type"])}}
        for n in bench_inputs.INPUT_NAMES
    ]
