"""What goes in and out of the MNIST handler: request decoding and answer encoding.

Pure functions over what TorchServe 0.12 hands a handler: one `row` per request (a dict of
parameter name → value) and that request's headers. A client may send the image

- as the raw body (`Content-Type: image/png`, `application/octet-stream`…)  → row["body"]: bytes
- as a multipart field `file` (or `image`, `data`)                          → row["file"]: bytes
- base64 in JSON: {"image": "<base64 or data: URL>"}                       → row["body"]: dict
- base64 as text (`Content-Type: text/plain`)                               → row["body"]: str
- with no Content-Type at all (`curl --data-binary @x.png`): the frontend parses the body as
  form data; base64 text survives that and is recovered, binary bytes do not (a clear 415).

Every rejection raises `ImageError` carrying the HTTP status to answer with.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import numpy as np
from PIL import Image

from recognition.preprocessing import ImageError

IMAGE_FIELDS = ("file", "image", "data", "body")  # where the image may be, first match wins
JSON_FIELDS = ("image", "data", "file")  # keys of a JSON object that may hold base64
RETURN_IMAGE_HEADER = "x-return-image"
RETURN_IMAGE_PARAM = "return_image"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

FORM_HINT = (
    "the image arrived as form data (a request without Content-Type, as `curl --data-binary` "
    "sends it); send it with a Content-Type such as image/png or application/octet-stream, "
    "or as multipart field 'file'"
)

_DATA_URL = re.compile(rb"^data:[\w.+/-]*(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")
_TRUE = {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def header(headers: Mapping[str, Any], name: str) -> str | None:
    """A request header by case-insensitive name, or None."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and isinstance(value, str):
            return value
    return None


def is_truthy(value: Any) -> bool:
    """True for 1/true/yes/on in any spelling TorchServe may hand over (str, bytes, bool, int)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, bool | int):
        return bool(value)
    return isinstance(value, str) and value.strip().lower() in _TRUE


def wants_image(row: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
    """Whether the client asked for the 28×28 input back: header, parameter or JSON key."""
    if is_truthy(header(headers, RETURN_IMAGE_HEADER)):
        return True
    if is_truthy(row.get(RETURN_IMAGE_PARAM)):
        return True
    body = row.get("body")
    return isinstance(body, dict) and is_truthy(body.get(RETURN_IMAGE_PARAM))


def decode_base64(text: str | bytes) -> bytes:
    """Bytes from base64 text or a `data:` URL (standard or URL-safe alphabet, padding optional)."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    raw = _DATA_URL.sub(b"", raw.strip(), count=1)
    raw = re.sub(rb"\s", b"", raw).replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
    if not raw:
        raise ImageError("empty request: no image bytes received")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("invalid base64 image data") from None


def looks_like_base64(data: bytes) -> bool:
    """True for ASCII base64 text or a data: URL; no image format's bytes look like that."""
    head = bytes(data[:64])
    return bool(_DATA_URL.match(head)) or bool(_BASE64_TEXT.match(bytes(data)))


def part_type(headers: Mapping[str, Any], name: str) -> str:
    """Content type TorchServe recorded for one parameter (multipart part or body), lower case."""
    part = headers.get(name)
    value = part.get("content-type") if isinstance(part, dict) else None
    return value.lower() if isinstance(value, str) else ""


def _from_bytes(data: bytes, declared: str) -> bytes:
    """Bytes declared as an image are the image; otherwise base64 text is decoded first."""
    if declared.startswith("image/") or not data or not looks_like_base64(data):
        return data
    return decode_base64(data)


def _from_value(value: Any, declared: str = "") -> bytes:
    """Image bytes from one parameter value: binary as is, text as base64, JSON by its keys."""
    if isinstance(value, bytes | bytearray):
        return _from_bytes(bytes(value), declared)
    if isinstance(value, str):
        return decode_base64(value)
    if isinstance(value, dict):
        for key in JSON_FIELDS:
            if key in value:
                if not isinstance(value[key], str):
                    raise ImageError(f"JSON field {key!r} must be a base64 string")
                return decode_base64(value[key])
        raise ImageError(f"JSON body needs one of the fields {list(JSON_FIELDS)} (base64 image)")
    raise ImageError("send one image per request (a JSON list is not accepted)")


def _from_form(row: Mapping[str, Any]) -> bytes:
    """Rebuild base64 text that the frontend parsed as form data (`+` came back as spaces)."""
    pairs = [(k, v) for k, v in row.items() if k != RETURN_IMAGE_PARAM]
    if len(pairs) != 1:
        raise ImageError(FORM_HINT, status=HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    key, value = pairs[0]
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    text = f"{key}={value}".replace(" ", "+")
    try:
        return decode_base64(text)
    except ImageError:
        raise ImageError(FORM_HINT, status=HTTPStatus.UNSUPPORTED_MEDIA_TYPE) from None


def request_image(row: Mapping[str, Any], headers: Mapping[str, Any]) -> bytes:
    """The encoded image of one request, however the client sent it."""
    content_type = (header(headers, "content-type") or "").lower()
    for name in IMAGE_FIELDS:
        if name in row:
            value = row[name]
            if content_type.startswith("application/json") and isinstance(value, bytes | bytearray):
                # TorchServe's worker forwards the raw bytes when json.loads fails (invalid, or
                # nested too deeply: it catches the RecursionError before the handler runs)
                raise ImageError("the JSON body is not valid JSON (or is nested too deeply)")
            return _from_value(value, part_type(headers, name))
    if content_type.startswith(FORM_CONTENT_TYPE):
        return _from_form(row)
    fields = sorted(k for k in row if k != RETURN_IMAGE_PARAM)
    if fields:
        raise ImageError(f"no image in the request: expected multipart field 'file', got {fields}")
    raise ImageError("empty request: no image bytes received")


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def prediction(
    probabilities: Sequence[float], abstain: bool = False, why: str | None = None
) -> dict[str, Any]:
    """The answer for one image from its 10 calibrated probabilities (0..1): values in percent.

    `abstain` is true when the model declines to name a digit; `reason` then says why ("does not
    look like a digit", "unsure: 4 or 9"). `prediction` stays the arg-max either way.
    """
    percent = [round(float(p) * 100.0, 4) for p in probabilities]
    best = int(np.argmax(probabilities))
    return {
        "prediction": best,
        "confidence": percent[best],
        "probabilities": percent,
        "abstain": bool(abstain),
        "reason": why if abstain else None,
    }


def digit(
    box: Sequence[int],
    probabilities: Sequence[float],
    verdict: tuple[bool, str | None],
    image: np.ndarray | None = None,
) -> dict[str, Any]:
    """One entry of an answer's `digits`: its box [x, y, w, h] in the uploaded image (upright
    pixels), the `prediction` fields, and its 28×28 input when asked for."""
    entry = {"box": [int(v) for v in box], **prediction(probabilities, *verdict)}
    if image is not None:
        entry["image"] = png_base64(image)
    return entry


def number(digits: Sequence[Mapping[str, Any]]) -> str:
    """The predictions of a line's digits as a string, in reading order ("42")."""
    return "".join(str(entry["prediction"]) for entry in digits)


def png_base64(image: np.ndarray) -> str:
    """Base64 PNG of a [0, 1] grey image (the 28×28 input the model saw)."""
    pixels = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def error(message: str, status: int) -> dict[str, Any]:
    """The JSON body of a rejected request."""
    return {"error": message, "status": int(status)}


def to_json(body: Mapping[str, Any]) -> str:
    """Compact JSON text (TorchServe would indent a dict; a string goes out as is)."""
    return json.dumps(body, separators=(",", ":"))


def reason(status: int) -> str:
    """The standard reason phrase of an HTTP status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
