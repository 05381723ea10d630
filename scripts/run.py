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
from stack.cli import add_server_options
from stack.foreground import Shutdown, stop_on_signals, wait_while
from stack.gunicorn import GunicornError
from stack.launcher import Launcher, configured_bind
from stack.nginx import NginxError
from stack.torchserve import TorchServe, TorchServeError

log = logging.getLogger("run")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_options(parser, timeout=120.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 after Ctrl-C/SIGTERM, 1 when a server failed or died."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    try:
        with stop_on_signals():
            build_archives(model_store=args.model_store)
            server = TorchServe(args.work_dir, args.model_store)
            with Launcher(server, configured_bind(), ready_timeout=args.timeout) as stack:
                log.info("web UI: %s  (Ctrl-C stops it)", stack.url)
                status = wait_while(stack.running)
                log.error("a server exited on its own: stopping the other")
                return status
    except Shutdown as exc:
        log.info("%s: stopped", exc)
        return 0
    except (TorchServeError, GunicornError, NginxError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
