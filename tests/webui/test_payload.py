"""Reading the image out of a predict request: multipart, JSON data URL, raw body; in memory."""

import base64
import contextlib
import io
from collections.abc import Iterator

import pytest
from flask import Flask, Request, request
from werkzeug.test import EnvironBuilder

from webui import errors
from webui.payload import InMemoryRequest, PayloadError, decode_data_url, read_image

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
LIMIT = 1000
DEEP_JSON = b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # RecursionError in json


@contextlib.contextmanager
def build(request_class=InMemoryRequest, **kwargs) -> Iterator[Request]:
    builder = EnvironBuilder(method="POST", path="/api/predict", **kwargs)
    environ = builder.get_environ()
    request = request_class(environ)
    try:
        yield request
    finally:
        request.close()
        builder.close()
        environ["wsgi.input"].close()  # the encoded body Werkzeug's test builder spooled


def read(**kwargs) -> bytes:
    with build(**kwargs) as request, Flask(__name__).app_context():
        return read_image(request, LIMIT)


def test_multipart_file_field():
    assert read(data={"file": (io.BytesIO(PNG), "digit.png", "image/png")}) == PNG


def test_json_data_url_as_a_canvas_gives_it():
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert read(json={"image": url}) == PNG


def test_json_bare_base64():
    assert read(json={"image": base64.b64encode(PNG).decode()}) == PNG


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/octet-stream"])
def test_raw_body(content_type):
    assert read(data=PNG, content_type=content_type) == PNG


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"data": {"other": (io.BytesIO(PNG), "x.png")}}, 400, "'file' field"),
        ({"data": {"file": (io.BytesIO(b""), "x.png")}}, 400, "no image data"),
        ({"data": b"", "content_type": "image/png"}, 400, "no image data"),
        ({"json": {"img": "x"}}, 400, "JSON request"),
        ({"json": ["data:image/png;base64,AAAA"]}, 400, "JSON request"),
        ({"data": b"{not json", "content_type": "application/json"}, 400, "JSON request"),
        ({"json": {"image": "data:image/png;base64,@@@"}}, 400, "base64"),
        ({"data": DEEP_JSON, "content_type": "application/json"}, 400, "nested too deeply"),
        ({"data": PNG, "content_type": "text/plain"}, 415, "unsupported content type"),
        (
            {"data": {"file": "x"}, "content_type": "application/x-www-form-urlencoded"},
            415,
            "unsupported",
        ),
        ({"data": b"x" * (LIMIT + 1), "content_type": "image/png"}, 413, "MiB limit"),
        ({"data": {"file": (io.BytesIO(b"x" * (LIMIT + 1)), "x.png")}}, 413, "MiB limit"),
    ],
)
def test_requests_without_a_usable_image_are_refused(kwargs, status, message):
    with pytest.raises(PayloadError, match=message) as caught:
        read(**kwargs)
    assert caught.value.status == status


def test_an_oversized_data_url_is_refused_before_decoding():
    encoded = base64.b64encode(b"x" * (LIMIT * 2)).decode()
    with pytest.raises(PayloadError) as caught:
        decode_data_url("data:image/png;base64," + encoded, LIMIT)
    assert caught.value.status == 413


def test_uploads_stay_in_memory():
    big = b"\x00" * (2 * 1024 * 1024)  # Werkzeug spools anything over 500 KB to a temp file

    def upload(request_class):
        data = {"file": (io.BytesIO(big), "big.png", "image/png")}
        with build(request_class, data=data) as request:
            return type(request.files["file"].stream)

    assert upload(InMemoryRequest) is io.BytesIO
    # the stock request class would have written this upload to disk
    assert upload(Request) is not io.BytesIO


def test_too_many_form_parts_get_their_own_message_not_the_size_one():
    app = Flask(__name__)
    app.config.update(MAX_IMAGE_BYTES=10 * 1024 * 1024, MAX_CONTENT_LENGTH=14 * 1024 * 1024)
    errors.init_app(app)

    @app.post("/api/predict")
    def predict():
        return {"fields": len(request.files) + len(request.form)}

    parts = {f"f{i}": "x" for i in range(1500)}  # Werkzeug reads at most 1000 parts
    response = app.test_client().post(
        "/api/predict", data=parts, content_type="multipart/form-data"
    )
    assert response.status_code == 413
    message = response.get_json()["error"]
    assert "too many parts" in message
    assert "MiB limit" not in message
