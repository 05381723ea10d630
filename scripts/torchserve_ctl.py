"""Start, watch and stop one TorchServe instance serving the MNIST archives (over `stack`).

    python -m scripts.torchserve_ctl start    # build archives if needed, start, wait until READY
    python -m scripts.torchserve_ctl status   # pid, URLs and each model's workers
    python -m scripts.torchserve_ctl stop     # stop exactly the server started from run/torchserve/

Settings come from config/config.properties; any of its keys can be overridden with an
environment variable TS_<KEY> (e.g. TS_INFERENCE_ADDRESS=http://0.0.0.0:8080,
TS_GRPC_INFERENCE_PORT=7075). The server itself is `stack.torchserve.TorchServe`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import requests

from scripts.build_archives import build_archives
from stack.cli import add_server_options
from stack.torchserve import TorchServe, TorchServeError
from tsclient.protocol import worker_statuses

log = logging.getLogger("torchserve_ctl")


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
            states = ", ".join(worker_statuses(server.describe(model))) or "no workers"
        except (requests.RequestException, ValueError) as exc:
            states = f"unknown ({type(exc).__name__})"
        lines.append(f"  {model}: {states}")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    add_server_options(parser, timeout=60.0)
    parser.add_argument(
        "--no-build", action="store_true", help="do not (re)build archives before starting"
    )
    return parser.parse_args(argv)


def start(server: TorchServe, args: argparse.Namespace) -> None:
    """Build the archives (unless --no-build), start the server and wait until READY."""
    if not args.no_build:
        build_archives(model_store=args.model_store)
    server.start_ready(args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `make stop` and manual control."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    server = TorchServe(args.work_dir, args.model_store)
    try:
        if args.action == "start":
            if server.is_running():
                print(f"TorchServe already running (pid {server.pid()})")
                return 0
            start(server, args)
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
