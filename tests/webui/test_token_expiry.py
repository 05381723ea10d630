"""Past `token_expiration_min` the UI keeps answering, without a restart, on a real TorchServe.

A dedicated TorchServe (MLP only, to spare the CPU) whose keys expire after 3 seconds. Once
they have, TorchServe refuses the key in its own key file: the UI must ask the token API for a
new one with the API key.
"""

import json
import time
from datetime import datetime

import pytest

from stack.torchserve import TorchServe
from tests.conftest import clean_environ
from tests.helpers import loopback_overrides
from tests.webui.conftest import drawn_zero, make_app

pytestmark = pytest.mark.integration

EXPIRY_MIN = 0.05  # 3 seconds


@pytest.fixture(scope="module")
def short_lived_keys(torchserve, tmp_path_factory):
    """A real TorchServe serving mnist_mlp whose keys expire after 3 s."""
    overrides = {**loopback_overrides(), "token_expiration_min": str(EXPIRY_MIN)}
    server = TorchServe(
        tmp_path_factory.mktemp("short_keys"),
        torchserve.server.model_store,  # the archives the session fixture built
        {"mnist_mlp": "mnist_mlp.mar"},
        overrides=overrides,
        environ=clean_environ(),
    )
    with server:
        yield server


def expiry(key_file, kind: str) -> float:
    stamp = json.loads(key_file.read_text())[kind]["expiration time"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_expired_keys_are_renewed_through_the_token_api(short_lived_keys):
    server = short_lived_keys
    app = make_app(
        INFERENCE_URL=server.inference_url,
        MANAGEMENT_URL=server.management_url,
        KEY_FILE=str(server.key_file),
        CNN_MODEL="mnist_mlp",  # both roles on the one model this server has
    )
    client = app.test_client()
    try:
        assert (
            client.post("/api/predict", data=drawn_zero(), content_type="image/png").json["errors"]
            == {}
        )
        first = server.keys()
        time.sleep(max(0.0, expiry(server.key_file, "inference") - time.time()) + 0.5)

        response = client.post("/api/predict", data=drawn_zero(), content_type="image/png")
        assert response.status_code == 200, response.json
        assert response.json["errors"] == {}
        assert server.keys()["inference"] != first["inference"]  # the UI had a new one issued

        time.sleep(max(0.0, expiry(server.key_file, "management") - time.time()) + 0.5)
        health = client.get("/api/health")
        assert health.status_code == 200, health.json
        assert health.json["models"]["mlp"]["status"] == "ok"
    finally:
        app.extensions["torchserve"].close()
