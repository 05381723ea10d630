"""Request decoding and answer encoding of the MNIST handler, on the shapes TorchServe hands over.

Each `row`/`headers` pair below is what TorchServe 0.12's worker passes for one way of sending an
image (recorded from a live server: see handlers/codec.py).
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from handlers import codec
from recognition.preprocessing import ImageError

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # binary, never valid base64 text
B64 = base64.b64encode(PNG).decode()  # contains '+' and '/' and padding


def part(content_type: str) -> dict[str, str]:
    return {"content-type": content_type}


@pytest.mark.parametrize(
    ("row", "headers"),
    [
        # raw body with a content type
        ({"body": bytearray(PNG)}, {"body": part("image/png"), "Content-Type": "image/png"}),
        # raw body with no content type at all (curl -T, requests with bytes)
        ({"body": bytearray(PNG)}, {"body": part("")}),
        # multipart, field 'file' (the documented one) or 'data' (TorchServe's examples)
        ({"file": bytearray(PNG)}, {"file": part("image/png"), "Content-Type": "multipart/form"}),
        ({"data": bytearray(PNG)}, {"data": part("application/octet-stream")}),
        # JSON parsed by the worker: base64 or a data: URL under "image" or "data"
        ({"body": {"image": B64}}, {"Content-Type": "application/json"}),
        ({"body": {"data": "data:image/png;base64," + B64}}, {"Content-Type": "application/json"}),
        # JSON string, text/plain base64, URL-safe base64 without padding
        ({"body": B64}, {"Content-Type": "text/plain"}),
        (
            {"body": bytearray(base64.urlsafe_b64encode(PNG).rstrip(b"="))},
            {"body": part("application/octet-stream")},
        ),
        # base64 text posted with curl --data-binary and no Content-Type: parsed as a form,
        # split at the first '=' and with '+' turned into ' '
        (
            {B64.split("=")[0].replace("+", " "): bytearray(b"=")},
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        # a base64 form field sent properly url-encoded
        ({"image": bytearray(B64.encode())}, {"image": part("")}),
    ],
)
def test_request_image_accepts_every_way_of_sending(row: dict, headers: dict) -> None:
    assert codec.request_image(row, headers) == PNG


@pytest.mark.parametrize(
    ("row", "headers", "status", "fragment"),
    [
        ({}, {}, 400, "empty request"),
        ({"other": bytearray(b"1")}, {"Content-Type": "multipart/form-data"}, 400, "'file'"),
        ({"body": bytearray(b"{not json")}, {"Content-Type": "application/json"}, 400, "JSON"),
        ({"body": {"nothing": 1}}, {"Content-Type": "application/json"}, 400, "JSON body"),
        ({"body": {"image": 12}}, {"Content-Type": "application/json"}, 400, "base64 string"),
        ({"body": [B64, B64]}, {"Content-Type": "application/json"}, 400, "one image"),
        ({"body": "%%%"}, {"Content-Type": "text/plain"}, 400, "base64"),
        # binary bytes sent as a form: the frontend dropped or mangled them
        ({}, {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
        (
            {"\x89PNG\ufffd": bytearray("\ufffd".encode()), "x": bytearray(b"y")},
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "multipart",
        ),
    ],
)
def test_request_image_rejects_with_a_status(
    row: dict, headers: dict, status: int, fragment: str
) -> None:
    with pytest.raises(ImageError) as info:
        codec.request_image(row, headers)
    assert info.value.status == status
    assert fragment in str(info.value)


def test_bytes_declared_as_an_image_are_never_base64_decoded() -> None:
    text_like = b"aGVsbG8="  # valid base64, but the client said image/png
    assert codec.request_image({"body": bytearray(text_like)}, {"body": part("image/png")}) == (
        text_like
    )


@pytest.mark.parametrize(
    ("row", "headers", "expected"),
    [
        ({}, {"X-Return-Image": "1"}, True),
        ({}, {"x-return-image": "true"}, True),
        ({}, {"X-Return-Image": "0"}, False),
        ({"return_image": bytearray(b"1")}, {}, True),  # multipart field or /invocations query
        ({"body": {"image": B64, "return_image": True}}, {}, True),
        ({"body": {"image": B64, "return_image": False}}, {}, False),
        ({"body": bytearray(PNG)}, {}, False),
    ],
)
def test_wants_image(row: dict, headers: dict, expected: bool) -> None:
    assert codec.wants_image(row, headers) is expected


def test_prediction_answer_schema() -> None:
    probabilities = np.full(10, 0.05, np.float32)
    probabilities[3] = 0.55
    answer = codec.prediction(probabilities)
    assert answer["prediction"] == 3
    assert isinstance(answer["prediction"], int)
    assert answer["confidence"] == pytest.approx(55.0)
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(100.0, abs=1e-3)
    assert json.loads(codec.to_json(answer)) == answer


def test_png_base64_round_trips_the_model_input() -> None:
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1.0
    decoded = Image.open(io.BytesIO(base64.b64decode(codec.png_base64(image))))
    assert decoded.size == (28, 28)
    assert decoded.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded), (image * 255).astype(np.uint8))


def test_error_body_and_reason() -> None:
    assert codec.error("bad", 422) == {"error": "bad", "status": 422}
    assert codec.reason(413) == "Request Entity Too Large"
    assert codec.reason(599) == "Error"


def test_prediction_carries_the_abstention() -> None:
    probabilities = np.full(10, 0.1, np.float32)
    answer = codec.prediction(probabilities, True, "does not look like a digit")
    assert answer["abstain"] is True
    assert answer["reason"] == "does not look like a digit"
    assert answer["prediction"] == 0  # the arg-max stays, for who wants it
    plain = codec.prediction(probabilities)
    assert plain["abstain"] is False and plain["reason"] is None
    assert codec.prediction(probabilities, False, "ignored")["reason"] is None
