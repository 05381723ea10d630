"""The nginx front door of the web UI: config/nginx.conf.template rendered, one nginx process.

    with Nginx("127.0.0.1:5000", "127.0.0.1:5001", run_dir / "nginx") as door:
        requests.get(door.url + "/api/health")

The body limit comes from recognition/limits.py, the error pages' security headers from
stack/headers.py: nothing in the template is typed in twice. nginx runs in the foreground
(`-g 'daemon off;'`) with its own prefix (pid file, temp dirs, logs); stop() ends only it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from recognition.limits import COSTLY_IN_FLIGHT, MAX_IMAGE_BYTES, MIB, max_request_bytes
from stack.headers import security_headers
from stack.paths import NGINX_TEMPLATE

# nginx's own answers (never the app's: proxy_intercept_errors stays off, so the UI's JSON 400s,
# 503s with Retry-After and 504s pass unchanged). nginx answers no 408: a request whose header
# or body times out is closed (reset) without a reply; the page is there for completeness.
ERROR_STATUSES: dict[int, str] = {
    400: "bad request",
    408: "request timed out: send the whole request sooner",
    413: f"request too large: images up to {MAX_IMAGE_BYTES / MIB:g} MiB",
    404: "not found",
    414: "request line too long",
    429: "too many requests from this client: slow down",
    502: "the web UI is not answering",
    503: "the web UI is busy: try again shortly",
    500: "internal error",
    504: "the web UI took too long to answer",
}
# Error pages are internal URIs (a named location fails for a request line nginx cannot parse).
ERROR_PREFIX = "/.front-door-error/"
RETRY_AFTER = {429: 1, 503: 1}  # seconds, on the answers that mean "come back soon"
# nginx's own status for "request header too large", answered as 400 (like 400's page).
HEADER_TOO_LARGE = 494
# How long the UI waits for TorchServe by default (webui/config.py: connect 0.5 s + read 5 s).
UI_WAIT = 5.5
PROXY_MARGIN = 2.0  # seconds nginx waits beyond the UI, so the UI's own JSON answer comes first

log = logging.getLogger("stack.nginx")


class NginxError(RuntimeError):
    """nginx is missing, its configuration is invalid, or it did not start answering."""


def find_nginx() -> str:
    """The nginx executable (PATH, else /usr/sbin/nginx); NginxError when there is none."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None
    )
    if found is None:
        raise NginxError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


@dataclass(frozen=True)
class DoorSettings:
    """What the template needs besides addresses: limits and deadlines derived at render time."""

    max_body_bytes: int = max_request_bytes()
    ui_wait: float = UI_WAIT  # seconds the UI may take before answering (its TorchServe wait)
    max_predictions: int = 16  # predictions in flight to gunicorn, all clients together
    per_client_predictions: int = 2  # predictions in flight per client address
    max_large_uploads: int = COSTLY_IN_FLIGHT  # of which uploads of 1 MB or more
    health_timeout: float = 3.0
    connect_timeout: float = 1.0

    @property
    def proxy_timeout(self) -> int:
        """Seconds nginx waits for gunicorn: longer than the UI waits for TorchServe."""
        return math.ceil(self.ui_wait + PROXY_MARGIN)


def header_lines(status: int) -> list[str]:
    """add_header lines of one error page: the security headers, no-store, Retry-After."""
    headers = {**security_headers(), "Cache-Control": "no-store"}
    if status in RETRY_AFTER:
        headers["Retry-After"] = str(RETRY_AFTER[status])
    for name, value in headers.items():
        if '"' in value or "$" in value:
            raise ValueError(f"header {name} cannot be written into nginx.conf: {value!r}")
    return [f'add_header {name} "{value}" always;' for name, value in headers.items()]


def error_location(status: int, message: str) -> str:
    """An internal location answering `status` with {"error": message, "status": status} as JSON."""
    body = json.dumps({"error": message, "status": status})
    if "'" in body or "\\" in body:
        raise ValueError(f"error message cannot be written into nginx.conf: {message!r}")
    lines = [
        f"location = {ERROR_PREFIX}{status} {{",
        "    internal;",
        "    default_type application/json;",
    ]
    lines += [f"    {line}" for line in header_lines(status)]
    lines += [f"    return {status} '{body}\\n';", "}"]
    return "\n".join(f"        {line}" for line in lines)


def error_pages() -> tuple[str, str]:
    """The error_page directives and the named locations they point to."""
    pages = [f"        error_page {s} {ERROR_PREFIX}{s};" for s in ERROR_STATUSES]
    pages.append(f"        error_page {HEADER_TOO_LARGE} {ERROR_PREFIX}400;")
    locations = "\n\n".join(error_location(s, m) for s, m in ERROR_STATUSES.items())
    return "\n".join(pages), locations


def render(
    listen: str,
    upstream: str,
    prefix: Path,
    settings: DoorSettings = DoorSettings(),
    *,
    container: bool = False,
) -> str:
    """nginx.conf for a front door on `listen` in front of gunicorn at `upstream`. `container`:
    for an image (started unprivileged, errors to stderr, bodies under the prefix)."""
    pages, locations = error_pages()
    as_root = os.geteuid() == 0 and not container
    values = {
        "USER": "user root;" if as_root else "",  # root's workers would be nobody's
        "PREFIX": str(prefix),
        "BODY_DIR": str(prefix / "client_body" if container else body_dir(prefix)),
        "ERROR_LOG": "/dev/stderr" if container else str(prefix / "logs" / "error.log"),
        "ACCESS_LOG": "off",
        "LISTEN": listen,
        "UPSTREAM": upstream,
        "MAX_BODY_BYTES": str(settings.max_body_bytes),
        "PROXY_TIMEOUT": str(settings.proxy_timeout),
        "PROXY_CONNECT_TIMEOUT": f"{settings.connect_timeout:g}",
        "HEALTH_TIMEOUT": f"{settings.health_timeout:g}",
        "MAX_PREDICTIONS": str(settings.max_predictions),
        "PER_CLIENT_PREDICTIONS": str(settings.per_client_predictions),
        "MAX_LARGE_UPLOADS": str(settings.max_large_uploads),
        "ERROR_PAGES": pages,
        "ERROR_LOCATIONS": locations,
    }
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise ValueError(
            f"unrendered placeholder in {NGINX_TEMPLATE}: {text[text.index('{{') :][:40]}"
        )
    return text


def body_dir(prefix: Path) -> Path:
    """Where nginx buffers request bodies: a directory of its own on /dev/shm if there is one
    (named after the prefix, so two front doors never share it), else under the prefix."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return prefix / "client_body"
    digest = hashlib.sha256(str(prefix).encode()).hexdigest()[:12]
    return shm / f"mnist-serve-nginx-{digest}"


def wait_answering(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Block until nginx answers HTTP at `url` (any status); NginxError on exit or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxError(f"nginx exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{url}/api/health", timeout=2)
            return
        time.sleep(0.05)
    raise NginxError(f"nginx at {url} did not answer within {timeout:.0f} s")


class Nginx:
    """One nginx on `listen` in front of gunicorn at `upstream`, in its own prefix directory."""

    def __init__(
        self, listen: str, upstream: str, prefix: Path, settings: DoorSettings | None = None
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.prefix = Path(prefix).resolve()
        self.settings = settings or DoorSettings()
        self.url = f"http://{listen.replace('0.0.0.0', '127.0.0.1')}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        """The rendered nginx.conf."""
        return self.prefix / "nginx.conf"

    @property
    def error_log(self) -> Path:
        """nginx's error log."""
        return self.prefix / "logs" / "error.log"

    @property
    def pid(self) -> int | None:
        """The nginx master's pid while it runs."""
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        """True while the nginx master is alive."""
        return self.process is not None and self.process.poll() is None

    def write_config(self) -> Path:
        """Render the configuration into the prefix (with its temp and log dirs); returns it."""
        for sub in ("logs", "proxy", "fastcgi", "uwsgi", "scgi", "cache"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        body_dir(self.prefix).mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(render(self.listen, self.upstream, self.prefix, self.settings))
        return self.conf_path

    def command(self) -> list[str]:
        """The nginx command line: own prefix and configuration, in the foreground."""
        conf = str(self.conf_path)
        return [find_nginx(), "-p", str(self.prefix), "-c", conf, "-g", "daemon off;"]

    def start(self, timeout: float = 15.0) -> str:
        """Check and start nginx, wait until it answers; returns the public URL."""
        self.write_config()
        checked = subprocess.run(
            [*self.command()[:5], "-t", "-q"], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise NginxError(f"invalid {self.conf_path}:\n{checked.stderr}")
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_answering(self.url, self.process, timeout)
        except NginxError as exc:
            self.stop()
            raise NginxError(f"{exc}\n{self.log_tail()}") from exc
        log.info("front door on %s (nginx pid %d) → %s", self.url, self.process.pid, self.upstream)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT (finish the requests in progress), then SIGKILL after `timeout` seconds; the
        buffered bodies' directory goes with it."""
        if self.is_running():
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(body_dir(self.prefix), ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of nginx's error log, for error messages."""
        if not self.error_log.is_file():
            return "(no nginx error log)"
        return f"--- {self.error_log} ---\n{self.error_log.read_text(errors='replace')[-chars:]}"

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
