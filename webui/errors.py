"""Error answers: JSON under /api, a small HTML page elsewhere; never a stack trace or a path."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
)

from webui.payload import too_large

log = logging.getLogger(__name__)

MALFORMED_BODY = "malformed request body: bad chunked encoding or truncated"


def _too_large(limit: int | None, length: int | None, parts: int | None) -> str:
    """Why Werkzeug refused a request as too large: its body over `limit`, or, for a body within
    it, a multipart form with more than `parts` parts or an oversized text field."""
    if limit is not None and length is not None and length <= limit:
        return (
            f"the form has too many parts (at most {parts}) or an oversized text field: "
            "send the image as one multipart field 'file'"
        )
    return too_large(current_app.config["MAX_IMAGE_BYTES"])


def _message(exc: HTTPException) -> str:
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _too_large(limit, request.content_length, request.max_form_parts)
    if (exc.code or 500) >= 500:
        return "internal error"
    return exc.description or exc.name


def handle_http_error(exc: HTTPException) -> Response:
    """JSON `{"error": ...}` for API paths, the error page for the others."""
    status = exc.code or 500
    message = _message(exc)
    if request.path.startswith("/api/"):
        response = jsonify(error=message)
    else:
        page = render_template("error.html", status=status, name=exc.name, message=message)
        response = current_app.make_response(page)
    response.status_code = status
    for name, value in exc.get_headers():
        if name.lower() != "content-type":  # e.g. Allow on a 405
            response.headers[name] = value
    return response


def is_malformed_body(exc: Exception) -> bool:
    """Whether `exc` is gunicorn refusing a malformed body (a bad chunk size, a truncated
    chunk) while the app reads it: a client error, not ours."""
    return type(exc).__module__ == "gunicorn.http.errors"


def handle_unexpected(exc: Exception) -> Response:
    """Log an unexpected exception in full, answer a plain 500 (a malformed body: a 400)."""
    if is_malformed_body(exc):
        log.info("malformed request body on %s %s: %s", request.method, request.path, exc)
        return handle_http_error(BadRequest(MALFORMED_BODY))
    log.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError())


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
