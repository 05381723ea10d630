"""Run TorchServe in the foreground, as a container's main process: the Docker image's command.

    python -m scripts.torchserve_foreground            # prebuilt model_store/, run/torchserve/
    python -m scripts.torchserve_foreground --timeout 300

Starts the server exactly as `make run` does (`scripts.torchserve_ctl`: config/config.properties
with TS_* environment overrides, the same work dir, archives and worker environment), waits
until both models are READY, then stays up as long as TorchServe does. SIGTERM or SIGINT stops
TorchServe and its workers and exits 0; TorchServe dying on its own exits 1, so the container
restarts. The archives are built into the image, never at start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from scripts.torchserve_ctl import (
    DEFAULT_MODEL_STORE,
    DEFAULT_WORK_DIR,
    TorchServe,
    TorchServeError,
)

log = logging.getLogger("torchserve_foreground")

POLL_SECONDS = 1.0


class Shutdown(BaseException):
    """SIGTERM or SIGINT: stop TorchServe and exit 0 (not an error, like KeyboardInterrupt)."""


def supervise(server: TorchServe, timeout: float) -> int:
    """Start `server`, wait until READY, then until it exits (1); always stop it on the way out."""
    server.start()
    try:
        server.wait_ready(timeout)
        while server.is_running():
            time.sleep(POLL_SECONDS)
        log.error("TorchServe exited\n%s", server.log_tail())
        return 1
    finally:
        server.stop()


def shutdown_on_signal(signum: int, _frame: FrameType | None) -> None:
    """First SIGTERM/SIGINT: raise Shutdown in the main thread; later ones: ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Shutdown(signal.Signals(signum).name)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="default: run/torchserve/"
    )
    parser.add_argument(
        "--model-store", type=Path, default=DEFAULT_MODEL_STORE, help="default: model_store/"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for READY (default: 180)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the container's exit status."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, shutdown_on_signal)
    signal.signal(signal.SIGINT, shutdown_on_signal)
    try:
        return supervise(TorchServe(args.work_dir, args.model_store), args.timeout)
    except Shutdown as exc:
        log.info("%s: TorchServe stopped", exc)
        return 0
    except TorchServeError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
