"""Error answers: JSON under /api, a small HTML page elsewhere; never a stack trace or a path."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from webui.payload import too_large

log = logging.getLogger(__name__)


def _message(exc: HTTPException) -> str:
    if isinstance(exc, RequestEntityTooLarge):
        return too_large(current_app.config["MAX_IMAGE_BYTES"])
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


def handle_unexpected(exc: Exception) -> Response:
    """Log an unexpected exception in full, answer a plain 500."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError())


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
