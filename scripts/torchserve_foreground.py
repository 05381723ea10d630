"""Run TorchServe in the foreground, as a container's main process: the Docker image's command.

    python -m scripts.torchserve_foreground            # prebuilt model_store/, run/torchserve/
    python -m scripts.torchserve_foreground --timeout 300

Starts the server exactly as `make run` does (`stack.torchserve.TorchServe`:
config/config.properties with TS_* environment overrides, the same work dir, archives and worker
environment), waits until both models are READY, then stays up as long as TorchServe does.
SIGTERM or SIGINT stops TorchServe and its workers and exits 0; TorchServe dying on its own
exits 1, so the container restarts. The archives are built into the image, never at start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from stack.cli import parse_server_args
from stack.foreground import serve_until_stopped, wait_while
from stack.torchserve import TorchServe, TorchServeError

log = logging.getLogger("torchserve_foreground")


def supervise(server: TorchServe, timeout: float) -> int:
    """Start `server`, wait until READY, then until it exits (1); always stop it on the way out."""
    try:
        server.start_ready(timeout)
        status = wait_while(server.is_running)
        log.error("TorchServe exited\n%s", server.log_tail())
        return status
    finally:
        server.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    return parse_server_args(__doc__, 180.0, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the container's exit status."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)

    def serve() -> int:
        return supervise(TorchServe(args.work_dir, args.model_store), args.timeout)

    return serve_until_stopped(serve, log, (TorchServeError,), "TorchServe stopped")


if __name__ == "__main__":
    sys.exit(main())
