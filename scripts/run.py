"""What `make run` does: TorchServe with both models and the web UI, in the foreground.

    python -m scripts.run                                  # web UI on http://127.0.0.1:5000
    GUNICORN_BIND=127.0.0.1:8000 python -m scripts.run     # the public address (nginx's)
    TS_INFERENCE_ADDRESS=http://127.0.0.1:9080 TS_MANAGEMENT_ADDRESS=http://127.0.0.1:9081 \\
        python -m scripts.run                              # TorchServe elsewhere; the UI follows

Builds the model archives from the committed weights, starts TorchServe from run/torchserve/
(config/config.properties with TS_* overrides; one that already runs there is used and left
running), waits until both models are READY, then serves the web UI under gunicorn pointed at
it on an internal loopback port, behind nginx (config/nginx.conf.template, prefix run/nginx/)
on the public address. Ctrl-C or SIGTERM stops nginx, the web UI, then the TorchServe it
started; any of them dying on its own stops the others and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from scripts.build_archives import build_archives
from stack.cli import parse_server_args
from stack.foreground import serve_until_stopped, wait_while
from stack.gunicorn import GunicornError
from stack.launcher import Launcher, configured_bind
from stack.nginx import NginxError
from stack.torchserve import TorchServe, TorchServeError

log = logging.getLogger("run")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    return parse_server_args(__doc__, 120.0, argv)


def serve(args: argparse.Namespace) -> int:
    """Build the archives, start the stack, and wait until a server exits on its own (1)."""
    build_archives(model_store=args.model_store)
    server = TorchServe(args.work_dir, args.model_store)
    with Launcher(server, configured_bind(), ready_timeout=args.timeout) as stack:
        log.info("web UI: %s  (Ctrl-C stops it)", stack.url)
        status = wait_while(stack.running)
        log.error("a server exited on its own: stopping the other")
        return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after Ctrl-C/SIGTERM, 1 when a server failed or died."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    errors = (TorchServeError, GunicornError, NginxError, FileNotFoundError)
    return serve_until_stopped(lambda: serve(args), log, errors)


if __name__ == "__main__":
    sys.exit(main())
