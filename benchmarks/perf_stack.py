"""The servers a benchmark measures: TorchServe and the gunicorn web UI, started or attached to.

`Stack` starts both (`stack.torchserve`, `stack.gunicorn`) on free loopback ports from a
private work dir (archives built there from the given weights, model configs optionally
overridden for tuning), or attaches to services that already run (`Endpoints.attach`).
Processes are found by pid for CPU and RSS accounting.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.perf_cell import process_kind
from scripts.build_archives import build_archives
from stack.gunicorn import Gunicorn, clean_environ, webui_environ
from stack.paths import REPO_ROOT
from stack.ports import free_ports, loopback_overrides
from stack.torchserve import TorchServe
from tsclient.client import TorchServeClient
from tsclient.keys import KeyStore, bearer, read_key_file

MODEL_CONFIG_DIR = REPO_ROOT / "config" / "models"
MIB = 1024 * 1024
__all__ = ["clean_environ"]  # re-exported for perf.py

log = logging.getLogger("perf.stack")


def yaml_overrides(text: str, settings: Mapping[str, Any]) -> str:
    """A TorchServe model-config YAML with top-level `key: value` lines replaced or added."""
    lines = text.splitlines()
    for key, value in settings.items():
        entry = f"{key}: {value}"
        for i, line in enumerate(lines):
            if line.split(":", 1)[0].strip() == key and not line.startswith((" ", "#")):
                lines[i] = entry
                break
        else:
            lines.append(entry)
    return "\n".join(lines) + "\n"


def write_model_configs(target: Path, settings: Mapping[str, Any]) -> Path:
    """Copies of config/models/*.yaml with `settings` applied, for tuning runs."""
    target.mkdir(parents=True, exist_ok=True)
    for source in MODEL_CONFIG_DIR.glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        (target / source.name).write_text(yaml_overrides(text, settings), encoding="utf-8")
    return target


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants (empty when it is gone)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def describe_process(proc: psutil.Process) -> str:
    """A short label: the program and what it runs (java frontend, model worker, gunicorn…)."""
    try:
        return process_kind(proc)
    except psutil.Error:
        return f"pid {proc.pid}"


def rss_mib(pids: list[int]) -> list[dict[str, Any]]:
    """RSS (MiB) of each process in the trees of `pids`."""
    rows = []
    for pid in pids:
        for proc in process_tree(pid):
            with contextlib.suppress(psutil.Error):
                rows.append(
                    {
                        "pid": proc.pid,
                        "process": describe_process(proc),
                        "rss_mib": round(proc.memory_info().rss / MIB, 1),
                    }
                )
    return rows


@dataclass
class Endpoints:
    """Where the services answer and how to authenticate to TorchServe."""

    inference_url: str
    management_url: str
    ui_url: str | None = None
    key_file: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)

    def keys(self) -> dict[str, str]:
        """Current TorchServe keys from the key file (empty when there is none)."""
        return read_key_file(self.key_file)

    def auth(self, kind: str = "inference") -> dict[str, str]:
        """Authorization header for one kind of key (none when token auth is off)."""
        return bearer(self.keys().get(kind))

    @classmethod
    def attach(
        cls,
        inference_url: str,
        management_url: str,
        ui_url: str | None,
        key_file: Path | None,
    ) -> Endpoints:
        """Endpoints of services somebody else started; their pids are found by port."""
        ports = {"torchserve": _port(inference_url)}
        if ui_url:
            ports["gunicorn"] = _port(ui_url)
        return cls(inference_url, management_url, ui_url, key_file, pids=pids_listening(ports))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])


def pids_listening(ports: Mapping[str, int]) -> dict[str, int]:
    """The (outermost) pid listening on each named local port, where it can be seen."""
    found = {}
    try:
        connections = psutil.net_connections("tcp")
    except psutil.Error:
        return found
    for name, port in ports.items():
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                proc = psutil.Process(conn.pid)
                parent = proc.parent()
                # gunicorn workers inherit the master's socket: count from the master.
                if parent is not None and "gunicorn" in " ".join(parent.cmdline()):
                    proc = parent
                found[name] = proc.pid
                break
    return found


class Stack:
    """TorchServe + gunicorn on free loopback ports, from a private work dir; a context manager."""

    def __init__(
        self,
        work_dir: Path,
        weights_dir: Path,
        *,
        model_settings: Mapping[str, Any] | None = None,
        ts_overrides: Mapping[str, Any] | None = None,
        worker_env: Mapping[str, str] | None = None,
        ui_env: Mapping[str, str] | None = None,
        with_ui: bool = True,
        ui_app: str = "webui:create_app()",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.weights_dir = Path(weights_dir)
        self.model_settings = dict(model_settings or {})
        self.ts_overrides = dict(ts_overrides or {})
        self.worker_env = dict(worker_env or {})
        self.ui_env = dict(ui_env or {})
        self.with_ui = with_ui
        self.ui_app = ui_app
        self.torchserve: TorchServe | None = None
        self.gunicorn: Gunicorn | None = None
        self.cold_start_s: float | None = None
        self.ui_start_s: float | None = None
        self.endpoints: Endpoints | None = None

    def build(self) -> Path:
        """Build both archives into the work dir's model store (model settings applied)."""
        config_dir = MODEL_CONFIG_DIR
        if self.model_settings:
            config_dir = write_model_configs(self.work_dir / "models", self.model_settings)
        store = self.work_dir / "model_store"
        build_archives(weights_dir=self.weights_dir, model_store=store, config_dir=config_dir)
        return store

    def start_torchserve(self, store: Path, timeout: float = 120.0) -> TorchServe:
        """Start TorchServe and wait until both models are READY; records the cold start."""
        overrides = {**loopback_overrides(), **self.ts_overrides}
        server = TorchServe(
            self.work_dir / "torchserve",
            store,
            overrides=overrides,
            environ=clean_environ(self.worker_env),
        )
        start = time.perf_counter()
        server.start()
        self.torchserve = server
        server.wait_ready(timeout)
        self.cold_start_s = time.perf_counter() - start
        log.info("TorchServe READY in %.1f s", self.cold_start_s)
        return server

    def start_ui(self, server: TorchServe, timeout: float = 60.0) -> str:
        """Start gunicorn with the repository's config against `server`; returns its URL."""
        (port,) = free_ports(1)
        urls = webui_environ(server.inference_url, server.management_url, server.key_file)
        self.gunicorn = Gunicorn(
            f"127.0.0.1:{port}",
            clean_environ({**urls, **self.ui_env}),
            self.work_dir / "gunicorn.log",
            app=self.ui_app,
        )
        start = time.perf_counter()
        url = self.gunicorn.start(timeout)
        self.ui_start_s = time.perf_counter() - start
        return url

    def start(self) -> Endpoints:
        """Build, start TorchServe, then the UI; returns the endpoints."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        server = self.start_torchserve(self.build())
        ui_url = self.start_ui(server) if self.with_ui else None
        pids = {"torchserve": server.pid() or 0}
        if self.gunicorn is not None and self.gunicorn.pid is not None:
            pids["gunicorn"] = self.gunicorn.pid
        self.endpoints = Endpoints(
            server.inference_url, server.management_url, ui_url, server.key_file, pids
        )
        return self.endpoints

    def stop(self) -> None:
        """Stop the UI, then TorchServe (each only if started)."""
        if self.gunicorn is not None:
            self.gunicorn.stop()
        if self.torchserve is not None:
            self.torchserve.stop()

    def __enter__(self) -> Endpoints:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def scale_workers(endpoints: Endpoints, workers: Mapping[str, int], timeout: float = 60) -> None:
    """Set each model's worker count through the management API (synchronously)."""
    keys = KeyStore(endpoints.key_file)
    urls = (endpoints.inference_url, endpoints.management_url)
    with TorchServeClient(*urls, keys, connect_retries=0) as client:
        for model, count in workers.items():
            client.scale(model, count, count, timeout)
