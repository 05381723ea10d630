"""Hostile input through the whole stack: every bad request gets a 4xx JSON error, never a 5xx.

Each case goes through `POST /api/predict` on the web UI under gunicorn (config/gunicorn.conf.py)
and, where it makes sense for a raw-body API, straight to TorchServe's inference API; after each
one a good image must still be answered. Both servers are real: the session's TorchServe and a
gunicorn started for this module.
"""

from __future__ import annotations

import io
import os
import random
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import requests
from PIL import Image

from evalsets.hostile import float_tiff, ico_bomb, palette_transparent
from evalsets.mutants import png_with_size
from recognition.limits import MAX_IMAGE_BYTES, MAX_PIXELS, MIB, max_request_bytes
from tests.helpers import LiveTorchServe, encode, gunicorn_for, png_bytes
from tests.webui.conftest import drawn_zero

pytestmark = pytest.mark.integration

GOOD = drawn_zero()


@dataclass(frozen=True)
class Case:
    """One hostile request: a body and how it is sent (multipart `file` unless `raw`)."""

    data: bytes = b""
    filename: str = "digit.png"
    content_type: str = "image/png"
    raw: bool = False  # send `data` as the body itself with `content_type`
    field: str = "file"  # the multipart field holding `data`
    statuses: tuple[int, ...] = (400,)


def photo(size: tuple[int, int], fmt: str) -> bytes:
    """A white image with a dark bar, encoded in `fmt`."""
    pixels = np.full((size[1], size[0]), 255, np.uint8)
    pixels[size[1] // 4 : 3 * size[1] // 4, size[0] // 2 - 2 : size[0] // 2 + 2] = 0
    return encode(Image.fromarray(pixels), fmt)


def huge_sides(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header declares width×height pixels (a decompression bomb in a few bytes)."""
    return png_with_size(data, width, height)


def thin_strip() -> bytes:
    """A real 30000×10 PNG."""
    pixels = np.full((10, 30000), 255, np.uint8)
    pixels[3:7, 14000:16000] = 0
    return png_bytes(pixels)


JPEG = photo((640, 480), "JPEG")
PNG = photo((280, 280), "PNG")
RANDOM = random.Random(6).randbytes(4096)

CASES = {
    "empty body": Case(b"", raw=True),
    "empty file": Case(b""),
    "random bytes": Case(RANDOM),
    "truncated PNG": Case(PNG[: len(PNG) // 2]),
    "truncated JPEG": Case(JPEG[: len(JPEG) // 3], filename="photo.jpg", content_type="image/jpeg"),
    "text as .png": Case(b"just some text, not an image\n" * 20),
    "HTML as .png": Case(b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),
    "SVG as .png": Case(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
        b'<text x="4" y="24">7</text></svg>'
    ),
    "PDF as .jpg": Case(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
        filename="scan.jpg",
        content_type="image/jpeg",
    ),
    "bomb 40000x40000": Case(huge_sides(PNG, 40000, 40000), statuses=(400, 413)),
    "0x0 image": Case(huge_sides(PNG, 0, 0)),
    "30000x10 image": Case(thin_strip()),
    "multipart without file": Case(PNG, field="picture"),
    "wrong content type": Case(PNG, raw=True, content_type="text/plain", statuses=(415,)),
    "image bytes labelled JSON": Case(PNG, raw=True, content_type="application/json"),
    "over the limit": Case(os.urandom(MAX_IMAGE_BYTES + MIB), raw=True, statuses=(413,)),
    # the decode budget (docs/robustness.md, "Decode budget")
    "ICO wrapping a 13300x13300 PNG": Case(
        ico_bomb(13300), filename="icon.ico", content_type="image/x-icon", statuses=(415,)
    ),
    "PSD": Case(b"8BPS\x00\x01" + b"\x00" * 64, filename="a.psd", statuses=(415,)),
    "EPS": Case(b"%!PS-Adobe-3.0 EPSF-3.0\nshowpage\n", filename="a.eps", statuses=(415,)),
    "palette PNG 6300x6300 with transparency": Case(palette_transparent(6300), statuses=(413,)),
    "just over Pillow's pixel limit": Case(
        huge_sides(PNG, MAX_PIXELS // 8000 + 1, 8000), statuses=(413,)
    ),
    "float TIFF with NaN": Case(
        float_tiff(64, float("nan")), filename="a.tif", content_type="image/tiff"
    ),
    "JSON nested 100000 deep": Case(
        b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        raw=True,
        content_type="application/json",
    ),
}
# Cases that do not apply to TorchServe's API as such: it takes the image from any multipart
# field, and text/plain is how it accepts base64, with raw image bytes recognised by content.
UI_ONLY = {"empty file", "multipart without file", "wrong content type"}


def send_ui(url: str, case: Case) -> requests.Response:
    """POST the case to /api/predict."""
    if case.raw:
        headers = {"Content-Type": case.content_type}
        return requests.post(f"{url}/api/predict", data=case.data, headers=headers, timeout=30)
    files = {case.field: (case.filename, case.data, case.content_type)}
    return requests.post(f"{url}/api/predict", files=files, timeout=30)


def send_torchserve(torchserve: LiveTorchServe, case: Case) -> requests.Response:
    """POST the case's bytes straight to the CNN's inference endpoint."""
    return torchserve.predict("mnist_cnn", case.data, {"Content-Type": case.content_type})


def assert_json_4xx(response: requests.Response, statuses: tuple[int, ...]) -> None:
    """A client error from the expected set, with a JSON body naming the problem."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body, dict)
    assert body.get("error") or body.get("message"), body


@pytest.fixture(scope="module")
def ui(torchserve: LiveTorchServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web UI under gunicorn in front of the session's TorchServe; yields its URL."""
    server = torchserve.server
    log = tmp_path_factory.mktemp("hostile") / "gunicorn.log"
    with gunicorn_for(server, log) as gunicorn:
        yield gunicorn.url


@pytest.mark.parametrize("name", list(CASES))
def test_web_ui_answers_4xx_json_and_keeps_serving(ui: str, name: str) -> None:
    case = CASES[name]
    assert_json_4xx(send_ui(ui, case), case.statuses)
    good = send_ui(ui, Case(GOOD))
    assert good.status_code == 200, good.text
    assert good.json()["errors"] == {}


@pytest.mark.parametrize("name", [n for n in CASES if n not in UI_ONLY])
def test_torchserve_answers_4xx_json_and_keeps_serving(torchserve: LiveTorchServe, name: str):
    case = CASES[name]
    assert_json_4xx(send_torchserve(torchserve, case), case.statuses)
    assert send_torchserve(torchserve, Case(GOOD)).status_code == 200


def test_web_ui_refuses_a_body_over_its_envelope_limit_with_json(ui: str) -> None:
    # Beyond what the UI reads at all (the largest image, base64 in JSON): Flask's own 413.
    response = requests.post(
        f"{ui}/api/predict",
        data=b"\0" * (max_request_bytes() + MIB),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert_json_4xx(response, (413,))


def test_torchserve_frontend_refuses_a_body_over_max_request_size(torchserve: LiveTorchServe):
    # Beyond config.properties' max_request_size TorchServe's Netty frontend answers the 413
    # itself, without a body: the handler never sees the request, so its JSON cannot be added.
    response = send_torchserve(torchserve, Case(b"\0" * (max_request_bytes() + MIB)))
    assert response.status_code == 413
    assert send_torchserve(torchserve, Case(GOOD)).status_code == 200


def test_many_bad_requests_in_a_row_leave_the_workers_alone(ui: str, torchserve: LiveTorchServe):
    before = {m: torchserve.describe(m)[0]["workers"] for m in ("mnist_mlp", "mnist_cnn")}
    for name, case in CASES.items():
        if name != "over the limit":
            assert send_ui(ui, case).status_code < 500, name
    after = {m: torchserve.describe(m)[0]["workers"] for m in ("mnist_mlp", "mnist_cnn")}
    pids = {m: sorted(w["pid"] for w in workers) for m, workers in before.items()}
    assert {m: sorted(w["pid"] for w in workers) for m, workers in after.items()} == pids
    assert all(w["status"] == "READY" for workers in after.values() for w in workers)


def test_the_cases_are_what_they_claim() -> None:
    bomb = CASES["bomb 40000x40000"].data
    assert struct.unpack(">II", bomb[16:24]) == (40000, 40000)  # IHDR width, height
    assert len(bomb) < 4096
    assert Image.open(io.BytesIO(CASES["30000x10 image"].data)).size == (30000, 10)
    assert len(CASES["over the limit"].data) > MAX_IMAGE_BYTES


def phone_photo_50mp() -> bytes:
    """An 8160×6120 colour JPEG with a dark stroke: what a 50 MP phone camera writes."""
    img = Image.new("RGB", (8160, 6120), "white")
    pixels = np.asarray(img).copy()
    pixels[1500:4600, 4000:4200] = 20
    return encode(Image.fromarray(pixels), "JPEG")


def test_a_50_mp_phone_photo_is_answered(ui: str, torchserve: LiveTorchServe) -> None:
    photo = phone_photo_50mp()
    assert send_ui(ui, Case(photo, filename="p.jpg", content_type="image/jpeg")).status_code == 200
    assert send_torchserve(torchserve, Case(photo, content_type="image/jpeg")).status_code == 200


def raw_http(url: str, request: bytes) -> bytes:
    """Send `request` as is to the server at `url` and return what it answers (status line on)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:  # Netty resets after (or instead of) answering
            pass
    return answer


def chunked_with_a_bad_size(path: str, extra: str = "") -> bytes:
    """A chunked POST whose first chunk size is not hexadecimal."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: image/png\r\nConnection: close\r\n{extra}\r\nZZZ\r\nabc\r\n0\r\n\r\n"
    ).encode()


def test_a_bad_chunk_size_is_a_client_error(ui: str, torchserve: LiveTorchServe) -> None:
    to_ui = raw_http(ui, chunked_with_a_bad_size("/api/predict"))
    assert to_ui.split(b"\r\n", 1)[0].split()[1] == b"400", to_ui[:300]
    assert b"malformed request body" in to_ui
    auth = "".join(f"{k}: {v}\r\n" for k, v in torchserve.auth("inference").items())
    to_ts = raw_http(
        torchserve.inference_url, chunked_with_a_bad_size("/predictions/mnist_cnn", auth)
    )
    status = int(to_ts.split(b"\r\n", 1)[0].split()[1]) if to_ts else 0
    assert 400 <= status < 500, to_ts[:300]  # Netty's own JSON: "Invalid HTTP message."
    assert b"Invalid HTTP message" in to_ts
    assert send_torchserve(torchserve, Case(GOOD)).status_code == 200


def test_many_tiny_form_parts_are_refused_with_the_right_message(ui: str) -> None:
    files = [("file", ("digit.png", GOOD, "image/png"))]
    files += [(f"f{i}", (None, "x")) for i in range(1500)]  # Werkzeug reads 1000 parts at most
    response = requests.post(f"{ui}/api/predict", files=files, timeout=30)
    assert_json_4xx(response, (400, 413))
    assert "too many parts" in response.json()["error"]
