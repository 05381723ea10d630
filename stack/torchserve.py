"""One TorchServe instance: its own work dir, TMPDIR, ports and models; started and stopped.

Settings come from config/config.properties with derived values and TS_<KEY> overrides
(`stack.properties.resolve_config`). Everything the server writes lives in its work directory:
logs/, key_file.json, the resolved config.properties, and tmp/, its own TMPDIR holding the pid
file and worker sockets, so a second instance (a test fixture) never finds or stops this one.

    with TorchServe(work_dir, model_store, archives(), overrides={...}) as server:
        requests.get(server.inference_url + "/ping", headers=server.auth("inference"))
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import requests

from recognition.catalog import archives
from stack.paths import CONFIG_FILE, DEFAULT_MODEL_STORE, DEFAULT_WORK_DIR, LOG_CONFIG
from stack.ports import busy_ports
from stack.properties import bind_targets, read_properties, resolve_config, url_of, write_properties
from tsclient.client import TorchServeClient
from tsclient.keys import KEY_FILE_NAME, KeyStore, bearer, read_key_file
from tsclient.protocol import all_ready

# The process environment TorchServe and its workers start with, unless already set.
WORKER_ENV_DEFAULTS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MAIN_CLASS = "org.pytorch.serve.ModelServer"
# Starts tried when the frontend dies before logging anything (a JVM killed at start-up, seen
# once in CI with nothing in its console but the JVM warning); a refusal it logs is not retried.
START_ATTEMPTS = 2
JAVA_HINT = (
    "TorchServe needs a Java 17 runtime and none was found: install one "
    "(Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
)

log = logging.getLogger("stack.torchserve")


class TorchServeError(RuntimeError):
    """TorchServe could not be started, did not become ready, or is not ours to stop."""


class SilentExitError(TorchServeError):
    """The frontend exited during start-up before it logged a line (nothing added to
    ts_log.log): killed from outside, not refused by its configuration."""


def find_java(environ: Mapping[str, str]) -> str:
    """The java executable TorchServe will run (JAVA_HOME first); TorchServeError if none."""
    java_home = environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").is_file():
        return str(Path(java_home, "bin", "java"))
    found = shutil.which("java", path=environ.get("PATH"))
    if not found:
        raise TorchServeError(JAVA_HINT)
    return found


class TorchServe:
    """One TorchServe instance with its own work dir, TMPDIR, ports and models."""

    def __init__(
        self,
        work_dir: Path = DEFAULT_WORK_DIR,
        model_store: Path = DEFAULT_MODEL_STORE,
        models: Mapping[str, str] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        config_file: Path = CONFIG_FILE,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self._logged_at_start = 0  # ts_log.log's size when the last start began
        self.model_store = Path(model_store).resolve()
        self.models = dict(archives() if models is None else models)
        self.environ = dict(os.environ if environ is None else environ)
        base = read_properties(Path(config_file).read_text(encoding="utf-8"))
        self.config = resolve_config(base, self.environ, overrides)
        self._client: TorchServeClient | None = None

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
    def ts_log(self) -> Path:
        """TorchServe's main log, where the frontend says why it stops."""
        return self.log_dir / "ts_log.log"

    @property
    def key_file(self) -> Path:
        """key_file.json, written by TorchServe in its working directory."""
        return self.work_dir / KEY_FILE_NAME

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

    # Talking to it ----------------------------------------------------------------------------

    @property
    def client(self) -> TorchServeClient:
        """A client of this server reading its key file (made on first use)."""
        if self._client is None:
            keys = KeyStore(self.key_file)
            self._client = TorchServeClient(
                self.inference_url,
                self.management_url,
                keys,
                timeout=2.0,
                pool_size=4,
                connect_retries=0,  # wait_ready polls: a refused connection is an answer
            )
        return self._client

    def keys(self) -> dict[str, str]:
        """Current access keys by kind: inference, management, api (empty before start)."""
        return read_key_file(self.key_file)

    def auth(self, kind: str = "inference") -> dict[str, str]:
        """An Authorization header with the current key of one kind (none when there is none)."""
        return bearer(self.keys().get(kind))

    def renew_key(self, kind: str) -> str:
        """Have TorchServe issue a new key of one kind (inference, management): the new key."""
        return self.client.renew_key(kind)

    def describe(self, model: str, timeout: float = 2.0) -> Any:
        """The management API's description of one model (a list with one entry)."""
        return self.client.describe(model, timeout)

    def scale(self, model: str, min_worker: int, max_worker: int | None = None) -> None:
        """Set a model's worker range, waiting until TorchServe has applied it."""
        self.client.scale(model, min_worker, max_worker)

    # Lifecycle --------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this instance's TorchServe frontend when it is running, else None."""
        return self._frontend()[0]

    def _frontend(self) -> tuple[int | None, str]:
        """(pid, "running") for this instance's live frontend, else (None, why not)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            return None, f"no pid in {self.pid_file} ({type(exc).__name__})"
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None, f"pid {pid} has exited (a zombie)"
            if MAIN_CLASS not in proc.cmdline():
                return None, f"pid {pid} is not a TorchServe frontend: {proc.name()}"
            cwd = Path(proc.cwd()).resolve()
        except psutil.Error as exc:
            return None, f"pid {pid} is gone ({type(exc).__name__})"
        if cwd != self.work_dir:
            return None, f"pid {pid} serves from {cwd}, not {self.work_dir}"
        return pid, "running"

    def is_running(self) -> bool:
        """True while this instance's frontend process is alive."""
        return self.pid() is not None

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k != "TS_CONFIG_FILE"}
        # Workers must import the archive's own copies of handlers/ and recognition/.
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

    def _check_startable(self) -> None:
        """TorchServeError unless Java, the archives and free ports are there and none runs."""
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

    def start(self) -> None:
        """Start the server in the background (returns at once; see `wait_ready`)."""
        self._check_startable()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)
        self._logged_at_start = self._ts_log_size()
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

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every model has its workers READY; TorchServeError on death or timeout."""
        deadline = time.monotonic() + timeout
        pending = set(self.models)
        while pending:
            pid, state = self._frontend()
            if pid is None:
                died = (
                    TorchServeError
                    if self._ts_log_size() > self._logged_at_start
                    else SilentExitError
                )
                raise died(f"TorchServe exited during start-up: {state}\n{self.log_tail()}")
            for model in sorted(pending):
                with contextlib.suppress(requests.RequestException, ValueError):
                    if all_ready(self.describe(model)):
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

    def _ts_log_size(self) -> int:
        """Bytes in TorchServe's main log (0 when there is none)."""
        try:
            return self.ts_log.stat().st_size
        except OSError:
            return 0

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of TorchServe's main log and console output, and of a JVM crash
        report if there is one, for error messages."""
        paths = [self.ts_log, self.log_dir / "console.log"]
        paths += sorted(self.work_dir.glob("hs_err_pid*.log"))
        tails = []
        for path in paths:
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                tails.append(f"--- {path} (last {lines} lines) ---\n" + "\n".join(text[-lines:]))
        return "\n".join(tails) or f"(no log in {self.log_dir})"

    def start_ready(self, timeout: float = 60.0, attempts: int = START_ATTEMPTS) -> None:
        """`start`, then `wait_ready`; a frontend that dies before logging anything
        (`SilentExitError`) is started again, up to `attempts` starts in all. Stopped on failure."""
        for attempt in range(1, attempts + 1):
            self.start()
            try:
                self.wait_ready(timeout)
                return
            except SilentExitError as exc:
                self.stop()
                if attempt == attempts:
                    raise
                log.warning("TorchServe died before logging anything; starting it again: %s", exc)
            except BaseException:
                self.stop()
                raise

    def __enter__(self) -> TorchServe:
        self.start_ready()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
