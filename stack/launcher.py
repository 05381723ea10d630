"""TorchServe, the gunicorn web UI and its nginx front door, on given ports, as one context manager.

    with Launcher(TorchServe(work_dir, store, overrides=...), "127.0.0.1:5000") as stack:
        requests.get(stack.url + "/api/health")       # through nginx
        requests.get(stack.ui.url + "/api/health")    # gunicorn itself, on an internal port

Start order: TorchServe (until READY) → gunicorn on a free 127.0.0.1 port (until healthy) →
nginx on the public `bind` (until it answers); stop order the reverse. `front_door=False` puts
gunicorn itself on `bind` (the tests of the app alone, the baseline of the hostile benchmark).
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
from typing import Any
from unittest import mock

from recognition.limits import COSTLY_IN_FLIGHT
from stack.gunicorn import APP, Gunicorn, webui_environ
from stack.nginx import UI_WAIT, DoorSettings, Nginx
from stack.paths import GUNICORN_CONFIG
from stack.ports import free_ports
from stack.torchserve import TorchServe

log = logging.getLogger("stack.launcher")


def gunicorn_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """config/gunicorn.conf.py evaluated under `environ` (GUNICORN_* overrides applied)."""
    environ = dict(os.environ if environ is None else environ)
    with mock.patch.dict(os.environ, environ, clear=True):  # the file reads os.environ
        return runpy.run_path(str(GUNICORN_CONFIG))


def configured_bind(environ: Mapping[str, str] | None = None) -> str:
    """The address config/gunicorn.conf.py binds to (GUNICORN_BIND, else its default)."""
    environ = os.environ if environ is None else environ
    if environ.get("GUNICORN_BIND"):
        return environ["GUNICORN_BIND"]
    return str(gunicorn_settings({})["bind"])


def door_settings(environ: Mapping[str, str]) -> DoorSettings:
    """The front door's limits for a web UI started with `environ` (its WEBUI_*/GUNICORN_*)."""
    ui_wait = UI_WAIT
    if environ.get("WEBUI_READ_TIMEOUT") or environ.get("WEBUI_CONNECT_TIMEOUT"):
        ui_wait = float(environ.get("WEBUI_READ_TIMEOUT") or 5.0) + float(
            environ.get("WEBUI_CONNECT_TIMEOUT") or 0.5
        )
    conf = gunicorn_settings(environ)
    workers = int(conf["workers"])
    # Every thread of every worker: the UI sheds beyond its own limit with a JSON 503 itself.
    # Large uploads: as many as the UI has costly-image lanes (webui/shedding.py), the others
    # refused here before their megabytes reach gunicorn.
    lanes = int(environ.get("WEBUI_COSTLY_IN_FLIGHT") or COSTLY_IN_FLIGHT)
    return DoorSettings(
        ui_wait=ui_wait,
        max_predictions=workers * int(conf["threads"]),
        max_large_uploads=lanes,
    )


class Launcher:
    """A TorchServe, the web UI in front of it and nginx in front of that, started together."""

    def __init__(
        self,
        server: TorchServe,
        bind: str,
        *,
        ui_env: Mapping[str, str] | None = None,
        ui_log: Path | None = None,
        app: str = APP,
        ready_timeout: float = 120.0,
        front_door: bool = True,
        door_dir: Path | None = None,
    ) -> None:
        self.server = server
        env = {**server.environ, **(ui_env or {})}
        for key, value in webui_environ(
            server.inference_url, server.management_url, server.key_file
        ).items():
            env.setdefault(key, value)  # an explicit WEBUI_* setting wins
        self.door: Nginx | None = None
        ui_bind = bind
        if front_door:
            (port,) = free_ports(1)
            ui_bind = f"127.0.0.1:{port}"
            prefix = door_dir or server.work_dir.parent / "nginx"
            self.door = Nginx(bind, ui_bind, prefix, door_settings(env))
        self.ui = Gunicorn(ui_bind, env, ui_log, app=app)
        self.ready_timeout = ready_timeout
        self.owns_server = False

    @property
    def url(self) -> str:
        """The public URL: nginx's, or gunicorn's without a front door."""
        return self.door.url if self.door is not None else self.ui.url

    def start(self) -> None:
        """TorchServe (unless it already runs) until READY, the UI until healthy, then nginx."""
        if self.server.is_running():
            log.info("TorchServe already runs (pid %s): using it", self.server.pid())
            self.server.wait_ready(self.ready_timeout)
        else:
            self.server.start_ready(self.ready_timeout)
            self.owns_server = True
        try:
            self.ui.start(self.ready_timeout)
            if self.door is not None:
                self.door.start()
        except BaseException:
            self.stop()
            raise

    def running(self) -> bool:
        """True while nginx (if any), the UI and TorchServe are all alive."""
        door_up = self.door is None or self.door.is_running()
        return door_up and self.ui.is_running() and self.server.is_running()

    def stop(self) -> None:
        """Stop nginx, the UI, then TorchServe if this launcher started it."""
        if self.door is not None:
            self.door.stop()
        self.ui.stop()
        if self.owns_server:
            self.server.stop()
            self.owns_server = False

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
