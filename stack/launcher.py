"""TorchServe and the gunicorn web UI together, on given ports, as one context manager.

    with Launcher(TorchServe(work_dir, store, overrides=...), "127.0.0.1:5000") as stack:
        requests.get(stack.ui.url + "/api/health")

The web UI is pointed at the server's addresses and key file. A TorchServe that already runs
from the same work dir is used and left running (as `make run` always did); one the launcher
started is stopped with the UI, also when the start fails half way.
"""

from __future__ import annotations

import logging
import os
import runpy
from collections.abc import Mapping
from pathlib import Path

from stack.gunicorn import APP, Gunicorn, webui_environ
from stack.paths import GUNICORN_CONFIG
from stack.torchserve import TorchServe

log = logging.getLogger("stack.launcher")


def configured_bind(environ: Mapping[str, str] | None = None) -> str:
    """The address config/gunicorn.conf.py binds to (GUNICORN_BIND, else its default)."""
    environ = os.environ if environ is None else environ
    if environ.get("GUNICORN_BIND"):
        return environ["GUNICORN_BIND"]
    return str(runpy.run_path(str(GUNICORN_CONFIG))["bind"])


class Launcher:
    """A TorchServe and the web UI in front of it, started together and stopped together."""

    def __init__(
        self,
        server: TorchServe,
        bind: str,
        *,
        ui_env: Mapping[str, str] | None = None,
        ui_log: Path | None = None,
        app: str = APP,
        ready_timeout: float = 120.0,
    ) -> None:
        self.server = server
        env = {**server.environ, **(ui_env or {})}
        for key, value in webui_environ(
            server.inference_url, server.management_url, server.key_file
        ).items():
            env.setdefault(key, value)  # an explicit WEBUI_* setting wins
        self.ui = Gunicorn(bind, env, ui_log, app=app)
        self.ready_timeout = ready_timeout
        self.owns_server = False

    def start(self) -> None:
        """Start TorchServe (unless it already runs) until READY, then the UI until healthy."""
        if self.server.is_running():
            log.info("TorchServe already runs (pid %s): using it", self.server.pid())
        else:
            self.server.start()
            self.owns_server = True
        try:
            self.server.wait_ready(self.ready_timeout)
            self.ui.start(self.ready_timeout)
        except BaseException:
            self.stop()
            raise

    def running(self) -> bool:
        """True while both the UI and TorchServe are alive."""
        return self.ui.is_running() and self.server.is_running()

    def stop(self) -> None:
        """Stop the UI, then TorchServe if this launcher started it."""
        self.ui.stop()
        if self.owns_server:
            self.server.stop()
            self.owns_server = False

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
