"""Security headers on every response, pages free of inline script, JSON errors under /api."""

import re

import pytest

from recognition.limits import MAX_IMAGE_BYTES, MIB

pytestmark = pytest.mark.unit

PAGES = ["/", "/upload", "/draw", "/camera"]


@pytest.fixture
def client(offline_app):
    return offline_app.test_client()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", p) for p in PAGES]
    + [
        ("GET", "/static/css/app.css"),
        ("GET", "/static/js/draw.js"),
        ("GET", "/no/such/page"),
        ("GET", "/api/health"),
        ("GET", "/api/predict"),
        ("POST", "/api/predict"),
    ],
)
def test_every_response_carries_the_security_headers(client, method, path):
    response = client.open(path, method=method)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_local_scripts_and_no_inline_code(client, path):
    html = client.get(path).get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts, "every page loads at least its status script"
    for attributes, body in scripts:
        assert re.search(r'src="/static/js/[\w-]+\.js"', attributes), attributes
        assert body.strip() == ""
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert not re.search(r'(src|href)="(https?:)?//', html), "no external resources"


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_with_their_navigation(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert 'href="/draw"' in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/static/js/results.js", "/static/css/app.css"])
def test_static_files_are_served_locally(client, path):
    response = client.get(path)
    assert response.status_code == 200
    response.close()


def test_api_answers_are_not_cached(client):
    assert client.get("/api/health").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nothing", 404),
        ("GET", "/api/predict", 405),
        ("DELETE", "/api/health", 405),
    ],
)
def test_api_errors_are_json(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json and isinstance(response.json["error"], str)


def test_a_page_404_is_html(client):
    response = client.get("/nothing")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_405_says_which_methods_are_allowed(client):
    assert "POST" in client.get("/api/predict").headers["Allow"]


def test_upload_over_the_limit_is_413_json(client, offline_app):
    size = offline_app.config["MAX_CONTENT_LENGTH"] + 1
    response = client.post("/api/predict", data=b"\0" * size, content_type="image/png")
    assert response.status_code == 413
    assert response.json == {
        "error": f"the image is larger than the {MAX_IMAGE_BYTES // MIB} MiB limit"
    }


def test_unexpected_errors_are_500_json_without_details(offline_app, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret /srv/internal/path")

    monkeypatch.setattr(offline_app.extensions["torchserve"], "predict_all", explode)
    client = offline_app.test_client()
    response = client.post("/api/predict", data=b"\x89PNG", content_type="image/png")
    assert response.status_code == 500
    assert response.json == {"error": "internal error"}
