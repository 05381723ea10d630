"""Load shedding in the app: predictions beyond MAX_IN_FLIGHT get 503 + Retry-After at once."""

from __future__ import annotations

import threading
import time

import pytest

from tests.webui.conftest import drawn_zero, make_app
from webui import config, shedding

pytestmark = pytest.mark.unit


def test_the_default_limit_leaves_threads_for_health() -> None:
    settings = config.from_env({})
    assert settings["MAX_IN_FLIGHT"] == config.GUNICORN_THREADS - config.HEALTH_RESERVE
    assert config.from_env({"GUNICORN_THREADS": "4"})["MAX_IN_FLIGHT"] == 2
    assert config.from_env({"GUNICORN_THREADS": "1"})["MAX_IN_FLIGHT"] == 1
    assert config.from_env({"WEBUI_MAX_IN_FLIGHT": "3"})["MAX_IN_FLIGHT"] == 3
    with pytest.raises(ValueError, match="WEBUI_MAX_IN_FLIGHT"):
        config.from_env({"WEBUI_MAX_IN_FLIGHT": "0"})


def test_a_full_semaphore_answers_503_with_retry_after_at_once(stub_torchserve, tmp_path) -> None:
    """Two slow predictions hold both slots: a third is refused in milliseconds, health still
    answers, and once the slots are free predictions are served again."""
    stub_torchserve.routes = {
        "/predictions/mnist_mlp": lambda h: (200, {"prediction": 0}),
        "/predictions/mnist_cnn": lambda h: (200, {"prediction": 0}),
        "/models/mnist_mlp": lambda h: (200, [{"workers": [{"status": "READY"}]}]),
        "/models/mnist_cnn": lambda h: (200, [{"workers": [{"status": "READY"}]}]),
    }
    stub_torchserve.delays = {"/predictions/mnist_mlp": 1.0, "/predictions/mnist_cnn": 1.0}
    app = make_app(
        INFERENCE_URL=stub_torchserve.url,
        MANAGEMENT_URL=stub_torchserve.url,
        INFERENCE_KEY="k",
        MANAGEMENT_KEY="k",
        KEY_FILE=str(tmp_path / "none.json"),
        MAX_IN_FLIGHT=2,
    )
    image = drawn_zero()

    def predict() -> None:
        with app.test_client() as client:
            client.post("/api/predict", data=image, content_type="image/png")

    holders = [threading.Thread(target=predict) for _ in range(2)]
    for thread in holders:
        thread.start()
    time.sleep(0.3)  # both inside the view, waiting on the stub
    with app.test_client() as client:
        began = time.monotonic()
        refused = client.post("/api/predict", data=image, content_type="image/png")
        took = time.monotonic() - began
        explain = client.post("/api/explain?model=cnn", data=image, content_type="image/png")
        health = client.get("/api/health")
    for thread in holders:
        thread.join(timeout=10)
    assert refused.status_code == 503 and took < 0.2
    assert refused.headers["Retry-After"] == str(shedding.RETRY_AFTER_SECONDS)
    assert refused.get_json() == {"error": "the web UI is busy: try again shortly", "status": 503}
    assert refused.headers["Content-Security-Policy"]  # the app's headers on the refusal too
    assert explain.status_code == 503
    assert health.status_code == 200
    assert app.extensions[shedding.EXTENSION].try_enter()  # slots were given back
    app.extensions[shedding.EXTENSION].leave()
    app.extensions["torchserve"].close()


def test_in_flight_never_blocks() -> None:
    slots = shedding.InFlight(1)
    assert slots.try_enter()
    began = time.monotonic()
    assert not slots.try_enter()
    assert time.monotonic() - began < 0.05
    slots.leave()
    assert slots.try_enter()


def test_large_bodies_cost_more_slots() -> None:
    """A drawing takes one slot, a 6 MB photo all but one (a drawing still fits beside it)."""
    slots = shedding.InFlight(6)
    assert slots.cost(30_000) == 1
    assert slots.cost(2 * shedding.SLOT_BYTES) == 3
    assert slots.cost(6_000_000) == 5 and slots.cost(14_000_000) == 5
    assert slots.cost(None) == 5
    assert slots.try_enter(slots.cost(6_000_000))
    assert not slots.try_enter(slots.cost(2 * shedding.SLOT_BYTES))
    assert slots.try_enter(slots.cost(30_000))  # the drawing beside the photo
    assert not slots.try_enter(1)
    slots.leave(5)
    assert slots.try_enter(3)
    assert shedding.InFlight(1).cost(6_000_000) == 1
