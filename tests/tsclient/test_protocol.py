"""tsclient/protocol.py: key rejections told apart, READY workers counted, scaling validated."""

from __future__ import annotations

import json

import pytest
import requests

from tsclient.protocol import all_ready, is_key_rejection, ready_workers, scale_params

pytestmark = pytest.mark.unit

# What TorchServe 0.12 answers a missing, wrong or expired key (test_client_live.py checks it).
INVALID_KEY = {
    "code": 400,
    "type": "InvalidKeyException",
    "message": "Token Authorization failed. Token either incorrect, expired, or not provided "
    "correctly",
}


def describe_answer(*statuses: str) -> list[dict]:
    """A management describe answer whose model has workers in the given states."""
    return [
        {
            "modelName": "mnist_cnn",
            "workers": [{"id": str(i), "status": s} for i, s in enumerate(statuses)],
        }
    ]


def response(status: int, body: object) -> requests.Response:
    """A requests.Response carrying a JSON body."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    return resp


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (describe_answer("READY"), 1),
        (describe_answer("READY", "READY"), 2),
        (describe_answer("UNLOADING", "READY"), 1),
        (describe_answer("UNLOADING"), 0),
        (describe_answer("STARTING", "STOPPED"), 0),
        (describe_answer(), 0),
        ([], 0),
        ({"workers": []}, 0),
        (["not a dict"], 0),
        ([{"workers": None}], 0),
    ],
)
def test_ready_workers_counts_only_ready(answer: object, expected: int) -> None:
    """Only workers in state READY count; any other shape counts as none."""
    assert ready_workers(answer) == expected


@pytest.mark.parametrize(
    ("description", "ready"),
    [
        ([{"workers": [{"status": "READY"}]}], True),
        ([{"workers": [{"status": "READY"}, {"status": "STARTING"}]}], False),
        ([{"workers": []}], False),
        ([], False),
        ({"code": 404}, False),
    ],
)
def test_all_ready(description: object, ready: bool) -> None:
    """Start-up is over when every worker, and at least one, is READY."""
    assert all_ready(description) is ready


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, INVALID_KEY, True),
        (400, {**INVALID_KEY, "message": "Token Authentication failed. ..."}, True),  # /token
        (401, {"type": "InvalidKeyException"}, False),  # not what TorchServe 0.12 sends
        (403, {"type": "InvalidKeyException"}, False),
        (400, {"code": 400, "type": "BadRequestException"}, False),
        (404, {"type": "ModelNotFoundException"}, False),
        (200, {"type": "InvalidKeyException"}, False),
        (400, ["not", "a", "dict"], False),
    ],
)
def test_key_rejection_is_told_apart(status: int, body: object, expected: bool) -> None:
    """Only TorchServe's key rejection (400 InvalidKeyException) triggers a key renewal."""
    assert is_key_rejection(response(status, body)) is expected


def test_a_rejection_without_json_is_not_a_key_rejection() -> None:
    resp = requests.Response()
    resp.status_code = 400
    resp._content = b"Bad Request"
    assert not is_key_rejection(resp)


def test_scale_params_are_whole_numbers_in_order() -> None:
    assert scale_params(1, 3) == {"min_worker": "1", "max_worker": "3", "synchronous": "true"}
    assert scale_params(2) == {"min_worker": "2", "max_worker": "2", "synchronous": "true"}


@pytest.mark.parametrize(
    ("low", "high"), [(0, 1), (-1, 2), (1.5, 2), ("1", 2), (True, 2), (3, 2), (1, 0)]
)
def test_scale_params_refuse_what_torchserve_would_misread(low: object, high: object) -> None:
    with pytest.raises(ValueError):
        scale_params(low, high)  # type: ignore[arg-type]
