"""Start, watch and stop one TorchServe instance serving the MNIST archives.

    python -m scripts.torchserve_ctl start    # build archives if needed, start, wait until READY
    python -m scripts.torchserve_ctl status   # pid, URLs and each model's workers
    python -m scripts.torchserve_ctl stop     # stop exactly the server started from run/torchserve/

Settings come from config/config.properties; any of its keys can be overridden with an
environment variable TS_<KEY> (e.g. TS_INFERENCE_ADDRESS=http://0.0.0.0:8080,
TS_GRPC_INFERENCE_PORT=7075). Everything the server writes lives in its work directory
(run/torchserve/ for the CLI): logs/, key_file.json with the access keys, the resolved
config.properties, and tmp/, its own TMPDIR, which holds the pid file and worker sockets, so
a second instance (a test fixture) never finds or stops this one.

In Python (the test fixture does this):

    with TorchServe(work_dir, model_store, MODELS, overrides={...}) as server:
        requests.get(server.inference_url + "/ping", headers=server.auth("inference"))
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = REPO_ROOT / "config" / "config.properties"
LOG_CONFIG = REPO_ROOT / "config" / "log4j2.xml"
DEFAULT_WORK_DIR = REPO_ROOT / "run" / "torchserve"
DEFAULT_MODEL_STORE = REPO_ROOT / "model_store"
MODELS = {"mnist_mlp": "mnist_mlp.mar", "mnist_cnn": "mnist_cnn.mar"}

# Keys besides those in config.properties that TS_<KEY> may set.
EXTRA_OVERRIDABLE = ("number_of_gpu", "job_queue_size", "default_response_timeout", "vmargs")
# The process environment TorchServe and its workers start with, unless already set.
WORKER_ENV_DEFAULTS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MAIN_CLASS = "org.pytorch.serve.ModelServer"
JAVA_HINT = (
    "TorchServe needs a Java 17 runtime and none was found: install one "
    "(Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
)

log = logging.getLogger("torchserve_ctl")


class TorchServeError(RuntimeError):
    """TorchServe could not be started, did not become ready, or is not ours to stop."""


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def read_properties(text: str) -> dict[str, str]:
    """Parse Java properties text (key=value lines, # comments), keeping the file's order."""
    props = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def write_properties(props: Mapping[str, str]) -> str:
    """Java properties text of a mapping."""
    return "".join(f"{key}={value}\n" for key, value in props.items())


def env_overrides(props: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The TS_<KEY> environment variables that override known configuration keys."""
    keys = [*props, *EXTRA_OVERRIDABLE]
    return {key: environ[f"TS_{key.upper()}"] for key in keys if f"TS_{key.upper()}" in environ}


def resolve_config(
    base: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Configuration file values, then TS_* environment overrides, then explicit overrides."""
    props = dict(base)
    props.update(env_overrides(base, environ or {}))
    props.update({key: str(value) for key, value in (overrides or {}).items()})
    return props


def url_of(address: str) -> str:
    """A client URL for a TorchServe bind address (0.0.0.0 is reached over loopback)."""
    parts = urlsplit(address)
    host = parts.hostname or "127.0.0.1"
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{parts.port}"


def bind_targets(props: Mapping[str, str]) -> list[tuple[str, int]]:
    """(host, port) of every listener the configuration asks for: HTTP APIs and gRPC."""
    targets = []
    for key in ("inference_address", "management_address", "metrics_address"):
        parts = urlsplit(props[key])
        targets.append((parts.hostname or "127.0.0.1", int(parts.port or 0)))
    for kind, default in (("inference", 7070), ("management", 7071)):
        host = props.get(f"grpc_{kind}_address", "127.0.0.1")
        targets.append((host, int(props.get(f"grpc_{kind}_port", default))))
    return targets


def busy_ports(targets: Iterable[tuple[str, int]]) -> list[str]:
    """The host:port pairs among `targets` that something already listens on."""
    busy = []
    for host, port in targets:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(f"{host}:{port}")
    return busy


def find_java(environ: Mapping[str, str]) -> str:
    """The java executable TorchServe will run (JAVA_HOME first); TorchServeError if none."""
    java_home = environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").is_file():
        return str(Path(java_home, "bin", "java"))
    found = shutil.which("java", path=environ.get("PATH"))
    if not found:
        raise TorchServeError(JAVA_HINT)
    return found


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports free on `host` right now (all held open while choosing)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def loopback_overrides() -> dict[str, str]:
    """Settings putting all five TorchServe listeners on free 127.0.0.1 ports."""
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    return {
        "inference_address": f"http://127.0.0.1:{inference}",
        "management_address": f"http://127.0.0.1:{management}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_address": "127.0.0.1",
        "grpc_management_port": str(grpc_management),
    }


def parse_keys(text: str) -> dict[str, str]:
    """Access keys by kind (inference, management, api) from the text of key_file.json."""
    data = json.loads(text)
    keys = {}
    for kind in ("inference", "management", "API"):
        entry = data.get(kind)
        if isinstance(entry, dict) and entry.get("key"):
            keys[kind.lower()] = str(entry["key"])
    return keys


def is_key_rejection(response: requests.Response) -> bool:
    """True when TorchServe refused a request for its key (0.12: 400 InvalidKeyException)."""
    if response.status_code != 400:
        return False
    try:
        return response.json().get("type") == "InvalidKeyException"
    except (ValueError, AttributeError):
        return False


def workers_ready(description: Any, min_workers: int = 1) -> bool:
    """True when a management describe answer lists at least `min_workers`, all READY."""
    if not isinstance(description, list) or not description:
        return False
    workers = description[0].get("workers") or []
    return len(workers) >= min_workers and all(w.get("status") == "READY" for w in workers)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class TorchServe:
    """One TorchServe instance with its own work dir, TMPDIR, ports and models."""

    def __init__(
        self,
        work_dir: Path = DEFAULT_WORK_DIR,
        model_store: Path = DEFAULT_MODEL_STORE,
        models: Mapping[str, str] = MODELS,
        *,
        overrides: Mapping[str, Any] | None = None,
        config_file: Path = CONFIG_FILE,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.model_store = Path(model_store).resolve()
        self.models = dict(models)
        self.environ = dict(os.environ if environ is None else environ)
        base = read_properties(Path(config_file).read_text(encoding="utf-8"))
        self.config = resolve_config(base, self.environ, overrides)

    # Where things are -------------------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        """TorchServe's private TMPDIR: pid file, worker sockets, extracted archives."""
        return self.work_dir / "tmp"

    @property
    def log_dir(self) -> Path:
        """TorchServe's log files (ts_log.log, model_log.log, access_log.log…)."""
        return self.work_dir / "logs"

    @property
    def key_file(self) -> Path:
        """key_file.json, written by TorchServe in its working directory."""
        return self.work_dir / "key_file.json"

    @property
    def pid_file(self) -> Path:
        """The pid file `torchserve --start` writes in its TMPDIR."""
        return self.tmp_dir / ".model_server.pid"

    @property
    def inference_url(self) -> str:
        """Base URL of the inference API."""
        return url_of(self.config["inference_address"])

    @property
    def management_url(self) -> str:
        """Base URL of the management API."""
        return url_of(self.config["management_address"])

    @property
    def metrics_url(self) -> str:
        """Base URL of the metrics API (Prometheus text at /metrics, no key needed)."""
        return url_of(self.config["metrics_address"])

    # Lifecycle --------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this instance's TorchServe frontend when it is running, else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            if MAIN_CLASS in proc.cmdline() and Path(proc.cwd()).resolve() == self.work_dir:
                return pid
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def is_running(self) -> bool:
        """True while this instance's frontend process is alive."""
        return self.pid() is not None

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k != "TS_CONFIG_FILE"}
        # Workers must import the archive's own copies of handlers/ and training/.
        env.pop("PYTHONPATH", None)
        for key, value in WORKER_ENV_DEFAULTS.items():
            env.setdefault(key, value)
        tmp = str(self.tmp_dir)
        env.update({"TMPDIR": tmp, "TEMP": tmp, "TMP": tmp})
        env.update({"LOG_LOCATION": str(self.log_dir), "METRICS_LOCATION": str(self.log_dir)})
        return env

    def command(self) -> list[str]:
        """The `torchserve --start` command line, run with this interpreter (and its workers)."""
        models = [f"{name}={archive}" for name, archive in self.models.items()]
        return [
            sys.executable,
            "-m",
            "ts.model_server",
            "--start",
            "--ncs",
            "--ts-config",
            str(self.work_dir / "config.properties"),
            "--log-config",
            str(LOG_CONFIG),
            "--model-store",
            str(self.model_store),
            "--models",
            *models,
        ]

    def start(self) -> None:
        """Start the server in the background (returns at once; see `wait_ready`)."""
        if self.is_running():
            raise TorchServeError(
                f"TorchServe already runs from {self.work_dir} (pid {self.pid()})"
            )
        find_java(self.environ)
        missing = [a for a in self.models.values() if not (self.model_store / a).is_file()]
        if missing:
            raise TorchServeError(
                f"missing archives in {self.model_store}: {missing} "
                "(build them: python -m scripts.build_archives)"
            )
        busy = busy_ports(bind_targets(self.config))
        if busy:
            raise TorchServeError(f"ports already in use: {', '.join(busy)}")
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)
        (self.work_dir / "config.properties").write_text(write_properties(self.config))
        with (self.log_dir / "console.log").open("ab") as console:
            result = subprocess.run(
                self.command(),
                cwd=self.work_dir,
                env=self._child_env(),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=60,
            )
        if result.returncode != 0 or not self.pid_file.is_file():
            raise TorchServeError(f"torchserve --start failed; see {self.log_dir / 'console.log'}")
        log.info("TorchServe starting from %s (pid file %s)", self.work_dir, self.pid_file)

    def keys(self) -> dict[str, str]:
        """Current access keys by kind: inference, management, api (empty before start)."""
        try:
            return parse_keys(self.key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def auth(self, kind: str = "inference") -> dict[str, str]:
        """An Authorization header with the current key of one kind (none when there is none)."""
        key = self.keys().get(kind)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def renew_key(self, kind: str, timeout: float = 2.0) -> str:
        """Have TorchServe issue a new key of one kind (inference, management) with the API key.

        Keys expire after token_expiration_min; the API key does not. TorchServe rewrites
        key_file.json, which every client re-reads.
        """
        response = requests.post(
            f"{self.management_url}/token",
            params={"type": kind},
            headers=self.auth("api"),
            timeout=timeout,
        )
        response.raise_for_status()
        return self.keys()[kind]

    def describe(self, model: str, timeout: float = 2.0) -> Any:
        """The management API's description of one model (a list with one entry)."""
        url = f"{self.management_url}/models/{model}"
        response = requests.get(url, headers=self.auth("management"), timeout=timeout)
        if is_key_rejection(response):
            self.renew_key("management", timeout)
            response = requests.get(url, headers=self.auth("management"), timeout=timeout)
        response.raise_for_status()
        return response.json()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every model has its workers READY; TorchServeError on death or timeout."""
        deadline = time.monotonic() + timeout
        pending = set(self.models)
        while pending:
            if not self.is_running():
                raise TorchServeError(f"TorchServe exited during start-up\n{self.log_tail()}")
            for model in sorted(pending):
                with contextlib.suppress(requests.RequestException, ValueError):
                    if workers_ready(self.describe(model)):
                        pending.discard(model)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TorchServeError(
                    f"models not READY after {timeout:.0f} s: {sorted(pending)}\n{self.log_tail()}"
                )
            time.sleep(0.2)
        log.info("TorchServe ready: %s", ", ".join(self.models))

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop this instance and its workers; False when it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        frontend = psutil.Process(pid)
        workers = frontend.children(recursive=True)
        frontend.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([frontend, *workers], timeout=timeout)
        for proc in alive:
            log.warning("killing pid %d, still alive %.0f s after SIGTERM", proc.pid, timeout)
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        self.pid_file.unlink(missing_ok=True)
        self.key_file.unlink(missing_ok=True)
        log.info("TorchServe (pid %d) stopped", pid)
        return True

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of TorchServe's main log (or console output), for error messages."""
        for name in ("ts_log.log", "console.log"):
            path = self.log_dir / name
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text[-lines:])
        return f"(no log in {self.log_dir})"

    def __enter__(self) -> TorchServe:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def status_lines(server: TorchServe) -> list[str]:
    """Human-readable status: pid, URLs, key file and each model's workers."""
    pid = server.pid()
    if pid is None:
        return [f"TorchServe is not running (work dir {server.work_dir})"]
    lines = [
        f"TorchServe running, pid {pid}, work dir {server.work_dir}",
        f"  inference  {server.inference_url}",
        f"  management {server.management_url}",
        f"  metrics    {server.metrics_url}/metrics",
        f"  keys       {server.key_file}",
    ]
    for model in server.models:
        try:
            workers = server.describe(model)[0].get("workers") or []
            states = ", ".join(str(w.get("status")) for w in workers) or "no workers"
        except (requests.RequestException, ValueError, IndexError, KeyError) as exc:
            states = f"unknown ({type(exc).__name__})"
        lines.append(f"  {model}: {states}")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="default: run/torchserve/"
    )
    parser.add_argument(
        "--model-store", type=Path, default=DEFAULT_MODEL_STORE, help="default: model_store/"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for READY (default: 60)"
    )
    parser.add_argument(
        "--no-build", action="store_true", help="do not (re)build archives before starting"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `make run` / `make stop`."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    server = TorchServe(args.work_dir, args.model_store)
    try:
        if args.action == "start":
            if server.is_running():
                print(f"TorchServe already running (pid {server.pid()})")
                return 0
            if not args.no_build:
                from scripts.build_archives import build_archives

                build_archives(model_store=args.model_store)
            server.start()
            try:
                server.wait_ready(args.timeout)
            except TorchServeError:
                server.stop()
                raise
        elif args.action == "stop" and not server.stop():
            print("TorchServe is not running")
            return 0
        print("\n".join(status_lines(server)))
    except (TorchServeError, FileNotFoundError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
