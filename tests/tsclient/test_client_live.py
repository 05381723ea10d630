"""tsclient against a real TorchServe 0.12: what a rejected key looks like, how keys are renewed.

A dedicated TorchServe (MLP only, to spare the CPU) whose keys expire after 3 seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import requests

from stack.torchserve import TorchServe
from tests.conftest import clean_environ
from tests.helpers import LiveTorchServe, canvas_digit, loopback_overrides
from tsclient.client import TorchServeClient
from tsclient.keys import KeyStore, bearer
from tsclient.protocol import KEY_REJECTION_TYPE, is_key_rejection, ready_workers

pytestmark = pytest.mark.integration

EXPIRY_MIN = 0.05  # 3 seconds
MODEL = "mnist_mlp"
PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def server(torchserve: LiveTorchServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real TorchServe serving mnist_mlp whose keys expire after 3 s."""
    overrides = {**loopback_overrides(), "token_expiration_min": str(EXPIRY_MIN)}
    with TorchServe(
        tmp_path_factory.mktemp("tsclient"),
        torchserve.server.model_store,
        {MODEL: f"{MODEL}.mar"},
        overrides=overrides,
        environ=clean_environ(),
    ) as started:
        yield started


@pytest.fixture
def client(server: TorchServe) -> Iterator[TorchServeClient]:
    with TorchServeClient(
        server.inference_url, server.management_url, KeyStore(server.key_file), timeout=30
    ) as made:
        yield made


def wait_for_expiry(server: TorchServe, kind: str) -> None:
    """Sleep until the file's `kind` key has expired."""
    stamp = json.loads(server.key_file.read_text())[kind]["expiration time"]
    expires = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, expires - time.time()) + 0.5)


def test_a_missing_wrong_or_expired_key_is_400_invalid_key_exception(server: TorchServe) -> None:
    """The one rejection rule, as the real server answers on both APIs."""
    predict = f"{server.inference_url}/predictions/{MODEL}"
    describe = f"{server.management_url}/models/{MODEL}"
    old = server.keys()
    answers = {
        "no key": requests.post(predict, data=canvas_digit(), headers=PNG, timeout=10),
        "wrong key": requests.post(
            predict, data=canvas_digit(), headers={**PNG, **bearer("wrong")}, timeout=10
        ),
        "inference key on management": requests.get(
            describe, headers=bearer(old["inference"]), timeout=10
        ),
        "no key on management": requests.get(describe, timeout=10),
    }
    wait_for_expiry(server, "inference")
    answers["expired key"] = requests.post(
        predict, data=canvas_digit(), headers={**PNG, **bearer(old["inference"])}, timeout=10
    )
    for name, response in answers.items():
        assert response.status_code == 400, name
        assert response.json()["type"] == KEY_REJECTION_TYPE, name
        assert is_key_rejection(response), name
    unknown = requests.get(
        f"{server.management_url}/models/no_such_model",
        headers=bearer(server.renew_key("management")),
        timeout=10,
    )
    assert unknown.status_code == 404 and not is_key_rejection(unknown)


def test_get_token_issues_a_new_key_and_retires_the_old(
    server: TorchServe, client: TorchServeClient
) -> None:
    """GET <management>/token?type=inference with the API key: a new key, the old one refused."""
    old = server.keys()["inference"]
    new = client.renew_key("inference")
    assert new != old and server.keys()["inference"] == new
    ping = f"{server.inference_url}/ping"
    assert is_key_rejection(requests.get(ping, headers=bearer(old), timeout=10))
    assert requests.get(ping, headers=bearer(new), timeout=10).ok
    wrong = requests.get(
        f"{server.management_url}/token",
        params={"type": "inference"},
        headers=bearer(server.keys()["management"]),  # only the API key may issue keys
        timeout=10,
    )
    assert is_key_rejection(wrong)


def test_requests_renew_an_expired_key_once(server: TorchServe, client: TorchServeClient) -> None:
    """Past expiry the client has a new key issued and the call succeeds."""
    assert client.predict(MODEL, canvas_digit(), PNG).status_code == 200
    first = server.keys()
    wait_for_expiry(server, "inference")
    response = client.predict(MODEL, canvas_digit(), PNG)
    assert response.status_code == 200, response.text
    assert server.keys()["inference"] != first["inference"]
    wait_for_expiry(server, "management")
    assert ready_workers(client.describe(MODEL)) == 1


class RotatedAfterRenewal(KeyStore):
    """A key store whose first renewed key TorchServe retires before the call repeated with it
    arrives: the race of keys rotated every few hundred ms under load, made certain."""

    def __init__(self, server: TorchServe) -> None:
        super().__init__(server.key_file)
        self.server = server
        self.rotations = 0

    def renew(self, kind: str, rejected: str | None, issue: Callable[[str], bool]) -> str | None:
        renewed = super().renew(kind, rejected, issue)
        if self.rotations == 0:
            self.rotations += 1
            assert self.server.renew_key(kind) != renewed
        return renewed


def test_a_key_rotated_again_during_the_repeated_call_is_renewed_a_second_time(
    server: TorchServe,
) -> None:
    """The first renewal's key is already retired when the repeated call arrives: a second
    renewal picks up the newest key and the call succeeds (one renewal answered 400)."""
    keys = RotatedAfterRenewal(server)
    with TorchServeClient(server.inference_url, server.management_url, keys, timeout=30) as client:
        assert client.predict(MODEL, canvas_digit(), PNG).status_code == 200
        server.renew_key("inference")  # the client still holds the retired key
        response = client.predict(MODEL, canvas_digit(), PNG)
    assert keys.rotations == 1
    assert response.status_code == 200, response.text
    assert keys.get("inference") == server.keys()["inference"]


def test_scale_sends_only_validated_counts(server: TorchServe, client: TorchServeClient) -> None:
    """TorchServe reads min_worker=1.5 as its default and answers 200: the client never sends it."""
    headers = bearer(server.renew_key("management"))
    misread = requests.put(
        f"{server.management_url}/models/{MODEL}",
        params={"min_worker": "1.5", "max_worker": "1", "synchronous": "true"},
        headers=headers,
        timeout=60,
    )
    assert misread.status_code == 200  # why scale_params refuses such a value
    with pytest.raises(ValueError):
        client.scale(MODEL, 1.5, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.scale(MODEL, 2, 1)
    client.scale(MODEL, 1, 1)
    assert ready_workers(client.describe(MODEL)) == 1
