"""The security headers of every answer, from the Flask app or from the nginx front door.

Defined once here: webui/security.py sets them on the app's responses, stack/nginx.py renders
them into the front door's own error pages (413, 429, 504…) so those carry the same policy.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # data: for the 28×28 image in the results, blob: for previews of uploads and captures
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def security_headers() -> dict[str, str]:
    """Name → value of every security header (a fresh copy)."""
    return dict(_HEADERS)
