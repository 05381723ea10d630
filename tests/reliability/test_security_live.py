"""Security defaults of the running stack: the session's TorchServe and the web UI under gunicorn.

Every listening socket on loopback, every TorchServe API but metrics behind its key, no model
registration, security headers on every kind of UI response, no stack trace or path in any
error, and no way through the UI to a management write.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from stack.gunicorn import Gunicorn
from tests.helpers import LiveTorchServe, gunicorn_for
from tests.reliability.conftest import digit_png

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = digit_png()
SAFE_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
LEAKS = re.compile(r"Traceback|File \"|site-packages|\.py\b|/tmp/|/home/|/root/|/usr/")


@pytest.fixture(scope="module")
def ui(torchserve: LiveTorchServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """The web UI under gunicorn (the repository's config) in front of the session TorchServe."""
    server = torchserve.server
    log = tmp_path_factory.mktemp("security") / "gunicorn.log"
    with gunicorn_for(server, log) as gunicorn:
        yield gunicorn


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket listening in a process tree."""
    found = []
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        found += [c.laddr[:2] for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def test_every_listening_socket_is_on_loopback(torchserve: LiveTorchServe, ui: Gunicorn) -> None:
    ts_pid = torchserve.server.pid()
    assert ts_pid is not None and ui.pid is not None
    torchserve_sockets = listening(ts_pid)
    ui_sockets = listening(ui.pid)
    # inference, management, metrics, gRPC inference and gRPC management
    assert len({port for _, port in torchserve_sockets}) >= 5, torchserve_sockets
    assert ui_sockets
    for address, port in torchserve_sockets + ui_sockets:
        ip = ipaddress.ip_address(address)
        # Java binds 127.0.0.1 as the IPv4-mapped ::ffff:127.0.0.1 on a dual-stack socket.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        assert ip == ipaddress.ip_address("127.0.0.1"), f"listening on {address}:{port}"


def test_torchserve_refuses_requests_without_the_right_key(torchserve: LiveTorchServe) -> None:
    keys = torchserve.keys()
    predict = f"{torchserve.inference_url}/predictions/mnist_cnn"
    describe = f"{torchserve.management_url}/models/mnist_cnn"
    token = f"{torchserve.management_url}/token"
    attempts = [
        ("POST", predict, None),
        ("POST", predict, "not-a-key"),
        ("POST", predict, keys["management"]),
        ("GET", describe, None),
        ("GET", describe, keys["inference"]),
        ("GET", token, None),
        ("GET", token, keys["management"]),
    ]
    for method, url, key in attempts:
        headers = {"Content-Type": "image/png"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = requests.request(method, url, data=IMAGE, headers=headers, timeout=10)
        assert response.status_code in (400, 401, 403), (method, url, response.status_code)
    assert torchserve.predict("mnist_cnn", IMAGE, {"Content-Type": "image/png"}).ok


def test_models_cannot_be_registered_or_unregistered(torchserve: LiveTorchServe) -> None:
    auth = torchserve.auth("management")
    models = f"{torchserve.management_url}/models"
    register = requests.post(
        models, params={"url": "mnist_cnn.mar", "model_name": "x"}, headers=auth, timeout=10
    )
    unregister = requests.delete(f"{models}/mnist_mlp", headers=auth, timeout=10)
    assert register.status_code == 405
    assert unregister.status_code == 405
    assert torchserve.describe("mnist_mlp")[0]["modelName"] == "mnist_mlp"


def ui_responses(url: str) -> dict[str, requests.Response]:
    """One response of each kind the UI gives: pages, static, API success and errors."""
    get = {
        "home": "/",
        "upload": "/upload",
        "draw": "/draw",
        "camera": "/camera",
        "static": "/static/css/app.css",
        "health": "/api/health",
        "page 404": "/no-such-page",
        "api 404": "/api/no-such-thing",
        "api 405": "/api/predict",
    }
    out = {name: requests.get(f"{url}{path}", timeout=10) for name, path in get.items()}
    predict = f"{url}/api/predict"
    out["predict"] = requests.post(predict, files={"file": ("d.png", IMAGE)}, timeout=30)
    out["predict 400"] = requests.post(predict, files={"file": ("d.png", b"junk")}, timeout=30)
    out["predict 415"] = requests.post(
        predict, data=IMAGE, headers={"Content-Type": "text/plain"}, timeout=30
    )
    out["predict 413"] = requests.post(
        predict, data=b"\0" * (16 * 1024 * 1024), headers={"Content-Type": "image/png"}, timeout=30
    )
    return out


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0].lower()] = [w.lower() for w in words[1:]]
    return parsed


def test_every_ui_response_carries_the_security_headers(ui: Gunicorn) -> None:
    for name, response in ui_responses(ui.url).items():
        headers = response.headers
        policy = directives(headers.get("Content-Security-Policy", ""))
        scripts = policy.get("script-src", policy.get("default-src"))
        assert scripts, (name, headers)
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:"} & set(scripts)
        framing = policy.get("frame-ancestors") == ["'none'"] or headers.get(
            "X-Frame-Options", ""
        ).upper() in ("DENY", "SAMEORIGIN")
        assert framing, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy") in SAFE_REFERRER, name


def test_errors_never_leak_stack_traces_or_paths(ui: Gunicorn, torchserve: LiveTorchServe):
    bodies = {name: r.text for name, r in ui_responses(ui.url).items() if r.status_code >= 400}
    assert len(bodies) >= 6
    png = {"Content-Type": "image/png"}
    bodies["ts bad image"] = torchserve.predict("mnist_cnn", b"\x89PNG\r\n\x1a\nbroken", png).text
    bodies["ts no digit"] = torchserve.predict("mnist_cnn", b"\xff" * 64, png).text
    bodies["ts unknown model"] = torchserve.predict("no_such_model", IMAGE, png).text
    bodies["ts bad key"] = requests.post(
        f"{torchserve.inference_url}/predictions/mnist_cnn",
        data=IMAGE,
        headers={"Authorization": "Bearer wrong", **png},
        timeout=10,
    ).text
    for name, body in bodies.items():
        assert not LEAKS.search(body), (name, body[:500])
        assert str(REPO_ROOT) not in body, name


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_ui_forwards_no_management_write(
    ui: Gunicorn, torchserve: LiveTorchServe, method: str
) -> None:
    before = torchserve.describe("mnist_mlp")[0]
    paths = ["/api/models/mnist_mlp", "/models/mnist_mlp", "/api/health", "/api/token", "/token"]
    for path in paths:
        response = requests.request(method, f"{ui.url}{path}", params={"min_worker": 3}, timeout=10)
        assert response.status_code in (404, 405), (method, path, response.status_code)
    after = torchserve.describe("mnist_mlp")[0]
    assert after["minWorkers"] == before["minWorkers"]
    assert len(after["workers"]) == len(before["workers"])
