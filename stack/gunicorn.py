"""The web UI under gunicorn with config/gunicorn.conf.py, pointed at one TorchServe.

with Gunicorn("127.0.0.1:5000", ui_environ(server)) as ui:
    requests.get(ui.url + "/api/health")
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from stack.paths import GUNICORN_CONFIG, REPO_ROOT

APP = "webui:create_app()"
# Settings of a caller that must not leak into a stack started for somebody else.
FOREIGN_PREFIXES = ("TS_", "WEBUI_", "GUNICORN_")

log = logging.getLogger("stack.gunicorn")


class GunicornError(RuntimeError):
    """gunicorn exited or did not become healthy."""


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without TS_*/WEBUI_*/GUNICORN_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update(extra or {})
    return env


def webui_environ(inference_url: str, management_url: str, key_file: Path | None) -> dict[str, str]:
    """The WEBUI_* settings that point the web UI at one TorchServe."""
    return {
        "WEBUI_INFERENCE_URL": inference_url,
        "WEBUI_MANAGEMENT_URL": management_url,
        "WEBUI_KEY_FILE": str(key_file or ""),
    }


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Block until GET <url>/api/health answers 200 "ok"; GunicornError on exit or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise GunicornError(f"gunicorn exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException, ValueError):
            response = requests.get(f"{url}/api/health", timeout=2)
            if response.status_code == 200 and response.json().get("status") == "ok":
                return
        time.sleep(0.1)
    raise GunicornError(f"{url}/api/health not ok after {timeout:.0f} s")


class Gunicorn:
    """One gunicorn serving the web UI on `bind`, its output to a log file or inherited."""

    def __init__(
        self,
        bind: str,
        env: Mapping[str, str],
        log_path: Path | None = None,
        *,
        app: str = APP,
    ) -> None:
        self.bind = bind
        self.url = f"http://{bind.replace('0.0.0.0', '127.0.0.1')}"
        self.env = {**env, "GUNICORN_BIND": bind}
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.log_path = Path(log_path) if log_path else None
        self.app = app
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid while it runs."""
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        """True while the gunicorn master is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> str:
        """Start gunicorn and wait until /api/health is ok; returns the URL."""
        command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), self.app]
        output = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT
            )
        finally:
            if output is not None:
                output.close()
        try:
            wait_healthy(self.url, self.process, timeout)
        except GunicornError as exc:
            self.stop()
            raise GunicornError(f"{exc}\n{self.log_tail()}") from exc
        log.info("web UI on %s (gunicorn pid %d)", self.url, self.process.pid)
        return self.url

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful), then SIGKILL after `timeout` seconds."""
        if not self.is_running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of gunicorn's log file, for error messages."""
        if self.log_path is None or not self.log_path.is_file():
            return "(gunicorn's output went to the terminal)"
        return f"--- {self.log_path} ---\n{self.log_path.read_text(errors='replace')[-chars:]}"

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
