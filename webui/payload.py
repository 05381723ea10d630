"""Getting the image bytes out of a `POST /api/predict` request, in memory only.

Three forms are accepted: a multipart upload (field `file`), JSON `{"image": "<data URL>"}` as a
canvas's `toDataURL()` gives it (plain base64 also works), and the raw image as the body with an
`image/*` or `application/octet-stream` content type.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import IO

from flask import Request

DATA_URL = re.compile(r"data:[\w.+/-]*(;[\w.+=-]+)*;base64,", re.ASCII)
RAW_TYPES = ("application/octet-stream", "")


class PayloadError(ValueError):
    """A request that holds no usable image; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InMemoryRequest(Request):
    """A request whose uploaded files stay in memory (Werkzeug spools big ones to disk)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        # The body is already capped by MAX_CONTENT_LENGTH, so memory use is bounded.
        return io.BytesIO()


def decode_data_url(value: str, max_bytes: int) -> bytes:
    """The bytes of a base64 data URL (or of bare base64); raises PayloadError."""
    value = value.strip()
    match = DATA_URL.match(value)
    encoded = value[match.end() :] if match else value
    if len(encoded) * 3 // 4 > max_bytes + 3:
        raise PayloadError(too_large(max_bytes), status=413)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("'image' is not valid base64 data") from None


def too_large(max_bytes: int) -> str:
    """The message for an image over the upload limit."""
    return f"the image is larger than the {max_bytes / (1024 * 1024):g} MiB limit"


def _from_multipart(request: Request, max_bytes: int) -> bytes:
    upload = request.files.get("file")
    if upload is None:
        raise PayloadError("multipart request without a 'file' field")
    return upload.read(max_bytes + 1)


def _from_json(request: Request, max_bytes: int) -> bytes:
    try:
        body = request.get_json(silent=True)  # silent covers invalid JSON, not deep nesting
    except RecursionError:
        raise PayloadError("the JSON body is nested too deeply") from None
    if not isinstance(body, dict) or not isinstance(body.get("image"), str):
        raise PayloadError('a JSON request must be {"image": "data:image/png;base64,..."}')
    return decode_data_url(body["image"], max_bytes)


def read_image(request: Request, max_bytes: int) -> bytes:
    """The image bytes of a predict request; raises PayloadError with a 400, 413 or 415."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        data = _from_multipart(request, max_bytes)
    elif mimetype == "application/json":
        data = _from_json(request, max_bytes)
    elif mimetype.startswith("image/") or mimetype in RAW_TYPES:
        data = request.get_data(cache=False)
    else:
        raise PayloadError(
            f"unsupported content type {mimetype[:80]!r}: send a multipart field 'file', "
            "JSON with a data URL, or the image itself as image/* or application/octet-stream",
            status=415,
        )
    if not data:
        raise PayloadError("the request holds no image data")
    if len(data) > max_bytes:
        raise PayloadError(too_large(max_bytes), status=413)
    return data
