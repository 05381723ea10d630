"""Exit 0 when every model has a READY worker, 1 when one has none: the container health probe.

    python -m scripts.healthcheck                       # both models, the server of run/torchserve/
    python -m scripts.healthcheck --models mnist_cnn    # one model
    python -m scripts.healthcheck --work-dir /srv/ts    # the server started from another work dir

TorchServe's /ping keeps answering "Healthy" while a model's workers are dead or still loading,
so this asks the management API to describe each model and counts its READY workers. Addresses
and keys come from `scripts.torchserve_ctl` (config/config.properties with TS_* overrides, the
work dir's key_file.json); when token authorization is off (Kubernetes, behind the auth proxy)
no key is sent. An expired management key is renewed with the API key, as TorchServe intends.

The Docker HEALTHCHECK and the Kubernetes startup, readiness and liveness probes run this.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from scripts.torchserve_ctl import DEFAULT_WORK_DIR, MODELS, TorchServe

log = logging.getLogger("healthcheck")

# TorchServe 0.12 answers a missing, wrong or expired key with 400 (InvalidKeyException).
TOKEN_REJECTION = "InvalidKeyException"


def ready_workers(description: Any) -> int:
    """How many workers a management describe answer lists as READY (0 for any other shape)."""
    if not isinstance(description, list) or not description or not isinstance(description[0], dict):
        return 0
    workers = description[0].get("workers") or []
    return sum(1 for w in workers if isinstance(w, dict) and w.get("status") == "READY")


def is_token_rejection(response: requests.Response) -> bool:
    """True when TorchServe refused a request for its key rather than for anything else."""
    if response.status_code not in {400, 401, 403}:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == TOKEN_REJECTION


def describe(server: TorchServe, model: str, timeout: float) -> requests.Response:
    """GET the management description of one model with the current management key."""
    return requests.get(
        f"{server.management_url}/models/{model}",
        headers=server.auth("management"),
        timeout=timeout,
    )


def renew_management_key(server: TorchServe, timeout: float) -> bool:
    """Have TorchServe issue a new management key (it rewrites key_file.json); True on success."""
    api_key = server.keys().get("api")
    if not api_key:
        return False
    response = requests.get(
        f"{server.management_url}/token",
        params={"type": "management"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
    return response.status_code == 200


def model_ready(server: TorchServe, model: str, timeout: float) -> bool:
    """True when the model has at least one READY worker; logs why not."""
    try:
        response = describe(server, model, timeout)
        if is_token_rejection(response) and renew_management_key(server, timeout):
            response = describe(server, model, timeout)
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
        "--models", nargs="+", default=list(MODELS), help=f"default: {' '.join(MODELS)}"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="default: run/torchserve/"
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds per request (default: 3)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 when every model can serve, 1 otherwise."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    args = parse_args(argv)
    server = TorchServe(work_dir=args.work_dir, models=dict.fromkeys(args.models, ""))
    results = [model_ready(server, model, args.timeout) for model in args.models]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
