"""TorchServe 0.12's answers, read one way: a rejected key, workers in a describe, scaling.

Verified against a real TorchServe 0.12 (tests/tsclient/test_client_live.py): a missing, wrong
or expired key is answered 400 with the JSON body
`{"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed. ..."}`,
on the inference and the management API alike; nothing else is a key rejection.
"""

from __future__ import annotations

from typing import Any

import requests

KEY_REJECTION_STATUS = 400
KEY_REJECTION_TYPE = "InvalidKeyException"
READY = "READY"


def is_key_rejection(response: requests.Response) -> bool:
    """True when TorchServe refused a request for its key (400 InvalidKeyException), only then."""
    if response.status_code != KEY_REJECTION_STATUS:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == KEY_REJECTION_TYPE


def worker_statuses(description: Any) -> list[str]:
    """Every worker's status in a describe answer (all versions); ValueError for another shape."""
    if not isinstance(description, list) or not description:
        raise ValueError("a describe answer is a non-empty list")
    statuses = []
    for version in description:
        if not isinstance(version, dict):
            raise ValueError("a describe entry is an object")
        workers = version.get("workers") or []
        if not isinstance(workers, list) or not all(isinstance(w, dict) for w in workers):
            raise ValueError("a describe entry's workers are a list of objects")
        statuses.extend(str(w.get("status", "UNKNOWN")) for w in workers)
    return statuses


def ready_workers(description: Any) -> int:
    """How many workers a describe answer lists as READY (0 for any other shape)."""
    try:
        return worker_statuses(description).count(READY)
    except ValueError:
        return 0


def all_ready(description: Any, min_workers: int = 1) -> bool:
    """True when a describe answer lists at least `min_workers` workers, every one READY."""
    try:
        statuses = worker_statuses(description)
    except ValueError:
        return False
    return len(statuses) >= min_workers and ready_workers(description) == len(statuses)


def scale_params(min_worker: int, max_worker: int | None = None) -> dict[str, str]:
    """Query of `PUT /models/<name>` for a worker range; ValueError unless 1 <= min <= max.

    Only whole numbers are sent: TorchServe reads a malformed count as its default.
    """
    high = min_worker if max_worker is None else max_worker
    for name, value in (("min_worker", min_worker), ("max_worker", high)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if min_worker > high:
        raise ValueError(f"min_worker {min_worker} is above max_worker {high}")
    return {"min_worker": str(min_worker), "max_worker": str(high), "synchronous": "true"}
