"""Security headers on every response: strict CSP without inline scripts, no framing, nosniff.

The headers themselves are in stack/headers.py, shared with the nginx front door's error pages.
"""

from __future__ import annotations

from flask import Flask, Response, request

from stack.headers import CONTENT_SECURITY_POLICY, security_headers

__all__ = ["CONTENT_SECURITY_POLICY", "HEADERS", "init_app"]

HEADERS = security_headers()


def add_security_headers(response: Response) -> Response:
    """Set the security headers; API answers are never cached."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Register the headers for every response of the app."""
    app.after_request(add_security_headers)
