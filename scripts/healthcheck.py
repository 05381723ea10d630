"""Exit 0 when every model has a READY worker, 1 when one has none: the container health probe.

    python -m scripts.healthcheck                       # both models, the server of run/torchserve/
    python -m scripts.healthcheck --models mnist_cnn    # one model
    python -m scripts.healthcheck --work-dir /srv/ts    # the server started from another work dir

TorchServe's /ping keeps answering "Healthy" while a model's workers are dead or still loading,
so this asks the management API to describe each model and counts its READY workers. Addresses
and keys come from `stack.torchserve.TorchServe` (config/config.properties with TS_* overrides,
the work dir's key_file.json); when token authorization is off (Kubernetes, behind the auth
proxy) no key is sent. An expired management key is renewed with the API key (`tsclient`).

The Docker HEALTHCHECK and the Kubernetes startup, readiness and liveness probes run this.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from recognition.catalog import MODEL_NAMES
from stack.paths import DEFAULT_WORK_DIR
from stack.torchserve import TorchServe
from tsclient.client import TorchServeClient
from tsclient.keys import KeyStore
from tsclient.protocol import ready_workers

log = logging.getLogger("healthcheck")


def model_ready(client: TorchServeClient, model: str, timeout: float) -> bool:
    """True when the model has at least one READY worker; logs why not."""
    try:
        response = client.describe_response(model, timeout)
        if response.status_code != 200:
            log.warning("%s: management API answered %d", model, response.status_code)
            return False
        count = ready_workers(response.json())
    except (requests.RequestException, ValueError) as exc:
        log.warning("%s: management API unreachable (%s)", model, type(exc).__name__)
        return False
    if count == 0:
        log.warning("%s: no READY worker", model)
    return count > 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=list(MODEL_NAMES), help=f"default: {' '.join(MODEL_NAMES)}"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="default: run/torchserve/"
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds per request (default: 3)"
    )
    return parser.parse_args(argv)


def client_for(work_dir: Path, timeout: float) -> TorchServeClient:
    """A client of the TorchServe started from `work_dir` (its addresses and key file)."""
    server = TorchServe(work_dir=work_dir)
    keys = KeyStore(server.key_file)
    return TorchServeClient(
        server.inference_url,
        server.management_url,
        keys,
        connect_timeout=timeout,
        timeout=timeout,
        pool_size=2,
        connect_retries=0,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 when every model can serve, 1 otherwise."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    args = parse_args(argv)
    with client_for(args.work_dir, args.timeout) as client:
        results = [model_ready(client, model, args.timeout) for model in args.models]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
