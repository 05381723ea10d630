"""Load shedding in the app: predictions beyond MAX_IN_FLIGHT get 503 + Retry-After at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from evalsets.hostile import big_png, encode
from recognition.limits import COSTLY_BYTES, COSTLY_IN_FLIGHT
from tests.webui.conftest import drawn_zero, make_app
from tests.webui.test_faults import handler_answer
from webui import config, shedding

pytestmark = pytest.mark.unit


def stub_app(stub_torchserve, tmp_path, **settings):
    """The app on the stub TorchServe, with fixed keys and `settings` on top."""
    return make_app(
        INFERENCE_URL=stub_torchserve.url,
        MANAGEMENT_URL=stub_torchserve.url,
        INFERENCE_KEY="k",
        MANAGEMENT_KEY="k",
        KEY_FILE=str(tmp_path / "none.json"),
        **settings,
    )


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
    app = stub_app(stub_torchserve, tmp_path, MAX_IN_FLIGHT=2)
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


def test_costly_images_are_photos_and_megapixel_headers() -> None:
    """By the body's size or the header's declared pixels (a JPEG at its 1/8 draft)."""
    assert not shedding.is_costly(drawn_zero())
    assert shedding.is_costly(big_png(3300, 3300, "RGB"))  # 40 KB, 11 MP
    assert shedding.is_costly(big_png(1000, 1000, "L"))
    assert not shedding.is_costly(big_png(999, 1000, "L"))
    assert shedding.is_costly(b"\0" * COSTLY_BYTES)  # a photo, whatever its header
    assert not shedding.is_costly(encode(Image.new("L", (4000, 3000)), "JPEG"))  # 0.19 MP drafted
    assert not shedding.is_costly(b"not an image")


def test_the_costly_lanes_are_shared_and_never_block(tmp_path) -> None:
    """Two Lanes on one directory (two gunicorn workers) share its lanes; a taken lane is
    refused at once and free again once given back, or once its holder process is gone."""
    first, second = shedding.Lanes(tmp_path, 1), shedding.Lanes(tmp_path, 1)
    held = first.try_take()
    assert held is not None and second.try_take() is None
    shedding.Lanes.give_back(held)
    again = second.try_take()
    assert again is not None
    shedding.Lanes.give_back(again)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LANE, str(tmp_path / "costly-0.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert first.try_take() is None  # held by another process
    holder.kill()
    holder.wait(timeout=10)
    holder.stdout.close()
    freed = first.try_take()  # the kernel dropped the dead holder's lock
    assert freed is not None
    shedding.Lanes.give_back(freed)


HOLD_LANE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_costly_image_without_a_lane_is_refused_and_a_drawing_is_not(
    stub_torchserve, tmp_path
) -> None:
    """With the one lane held (another worker's photo): a 11 MP PNG gets the 503 with
    Retry-After, before TorchServe sees it; a drawing is served; the lane is given back after
    a costly prediction."""
    stub_torchserve.routes = {
        "/predictions/mnist_mlp": lambda h: (200, handler_answer(0)),
        "/predictions/mnist_cnn": lambda h: (200, handler_answer(0)),
    }
    app = stub_app(stub_torchserve, tmp_path, LANE_DIR=str(tmp_path))
    lanes = app.extensions[shedding.LANES]
    costly = big_png(3300, 3300, "RGB")
    held = shedding.Lanes(tmp_path, 1).try_take()
    with app.test_client() as client:
        refused = client.post("/api/predict", data=costly, content_type="image/png")
        explain = client.post("/api/explain?model=cnn", data=costly, content_type="image/png")
        drawing = client.post("/api/predict", data=drawn_zero(), content_type="image/png")
        shedding.Lanes.give_back(held)
        served = client.post("/api/predict", data=costly, content_type="image/png")
    assert refused.status_code == 503 and explain.status_code == 503
    assert refused.headers["Retry-After"] == str(shedding.RETRY_AFTER_SECONDS)
    assert refused.get_json()["status"] == 503
    assert drawing.status_code == 200 and served.status_code == 200
    free = lanes.try_take()  # the served request gave its lane back
    assert free is not None
    shedding.Lanes.give_back(free)
    app.extensions["torchserve"].close()


def test_the_lane_count_and_directory_are_settings() -> None:
    assert config.from_env({})["COSTLY_IN_FLIGHT"] == COSTLY_IN_FLIGHT
    assert config.from_env({"WEBUI_COSTLY_IN_FLIGHT": "2"})["COSTLY_IN_FLIGHT"] == 2
    assert config.from_env({"WEBUI_LANE_DIR": "/x"})["LANE_DIR"] == "/x"
    with pytest.raises(ValueError, match="WEBUI_COSTLY_IN_FLIGHT"):
        config.from_env({"WEBUI_COSTLY_IN_FLIGHT": "0"})
