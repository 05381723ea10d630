"""The auth-proxy sidecar's nginx configuration, run for real on loopback.

nginx (Debian's nginx-light will do) serves deploy/k8s/base/auth-proxy*.conf with test keys, in
front of a stub upstream standing in for TorchServe, on free loopback ports. Skipped where no
nginx binary is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from stack.ports import free_ports
from stack.torchserve import TorchServe
from tests.deploy.manifests import K8S

pytestmark = pytest.mark.integration

INFERENCE_KEY = "i" * 20 + "-InferenceKey_0123456789"
MANAGEMENT_KEY = "m" * 20 + "-ManagementKey_012345678"


class Upstream(BaseHTTPRequestHandler):
    """Stand-in for TorchServe: answers 200 with the path and Authorization it received."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"path": self.path, "port": self.server.server_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Any GET."""
        self._answer()

    def do_POST(self) -> None:
        """Any POST."""
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@dataclass
class Proxy:
    """Where the running proxy listens."""

    inference: str
    management: str
    metrics: str


def render(upstream_ports: list[int], listen_ports: list[int], work: Path) -> Path:
    """The sidecar's nginx configuration with test keys and ports; returns nginx.conf."""
    template = (K8S / "base" / "auth-proxy.conf.template").read_text()
    servers = template.replace("${TS_PROXY_INFERENCE_KEY}", INFERENCE_KEY).replace(
        "${TS_PROXY_MANAGEMENT_KEY}", MANAGEMENT_KEY
    )
    assert "${TS_PROXY_" not in servers.split("upstream", 1)[1]
    for production, test in zip((8080, 8081, 8082), upstream_ports, strict=True):
        servers = servers.replace(f"server 127.0.0.1:{production};", f"server 127.0.0.1:{test};")
    for production, test in zip((9080, 9081, 9082), listen_ports, strict=True):
        servers = servers.replace(f"listen {production};", f"listen 127.0.0.1:{test};")
    (work / "conf.d").mkdir(parents=True)
    (work / "conf.d" / "auth-proxy.conf").write_text(servers)
    main = (K8S / "base" / "auth-proxy-nginx.conf").read_text()
    main = main.replace("/tmp/", f"{work}/").replace("/etc/nginx/conf.d/", f"{work}/conf.d/")
    if shutil.os.geteuid() == 0:
        # Only here: nginx started by root hands its workers to "nobody" unless told otherwise.
        main = "user root;\n" + main
    (work / "nginx.conf").write_text(main)
    return work / "nginx.conf"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """nginx with the sidecar configuration in front of three stub upstreams."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx not installed (Debian: apt-get install nginx-light)")
    upstreams = [ThreadingHTTPServer(("127.0.0.1", 0), Upstream) for _ in range(3)]
    for server in upstreams:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    listen = free_ports(3)
    work = tmp_path_factory.mktemp("auth-proxy")
    conf = render([s.server_address[1] for s in upstreams], listen, work)
    checked = subprocess.run(
        [nginx, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    urls = Proxy(*(f"http://127.0.0.1:{port}" for port in listen))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{urls.metrics}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=10)
        for server in upstreams:
            server.shutdown()
            server.server_close()


def bearer(key: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), bearer(""), bearer(MANAGEMENT_KEY), {"Authorization": INFERENCE_KEY}],
    ids=["none", "wrong", "empty", "management-key", "no-bearer"],
)
def test_inference_without_the_inference_key_is_refused(proxy: Proxy, headers: dict) -> None:
    """401 in TorchServe's own error shape, so clients treat it as a key rejection."""
    response = requests.post(
        f"{proxy.inference}/predictions/mnist_cnn", data=b"x", headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["type"] == "InvalidKeyException"


def test_inference_with_the_inference_key_reaches_torchserve(proxy: Proxy) -> None:
    """The right key passes to TorchServe's inference port, path intact."""
    response = requests.post(
        f"{proxy.inference}/predictions/mnist_cnn",
        data=b"png",
        headers=bearer(INFERENCE_KEY),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["path"] == "/predictions/mnist_cnn"


def test_management_takes_only_the_management_key(proxy: Proxy) -> None:
    """The management API refuses the inference key and accepts its own."""
    url = f"{proxy.management}/models/mnist_cnn"
    assert requests.get(url, headers=bearer(INFERENCE_KEY), timeout=5).status_code == 401
    response = requests.get(url, headers=bearer(MANAGEMENT_KEY), timeout=5)
    assert response.status_code == 200 and response.json()["path"] == "/models/mnist_cnn"


def test_ping_and_metrics_need_no_key_and_nothing_else_is_served(proxy: Proxy) -> None:
    """Health and Prometheus scraping are open (the NetworkPolicy limits who); the rest is 404."""
    assert requests.get(f"{proxy.inference}/ping", timeout=5).status_code == 200
    assert requests.get(f"{proxy.metrics}/metrics", timeout=5).json()["path"] == "/metrics"
    assert requests.get(f"{proxy.metrics}/healthz", timeout=5).text == "ok\n"
    assert requests.get(f"{proxy.metrics}/models", timeout=5).status_code == 404


def test_large_images_reach_torchserve(proxy: Proxy) -> None:
    """A body at TorchServe's own limit (max_request_size) is not cut short by nginx."""

    limit = int(TorchServe(environ={}).config["max_request_size"])  # as the launcher renders it
    body_limit = re.search(
        r"client_max_body_size (\d+)m;", (K8S / "base" / "auth-proxy.conf.template").read_text()
    )
    assert body_limit is not None and int(body_limit.group(1)) * 1024 * 1024 > limit
    response = requests.post(
        f"{proxy.inference}/predictions/mnist_cnn",
        data=b"\0" * limit,
        headers=bearer(INFERENCE_KEY),
        timeout=30,
    )
    assert response.status_code == 200


def test_a_wrong_key_is_refused_before_the_body_is_read(proxy: Proxy) -> None:
    """Headers announcing a 14 MB body and no body at all: 401 at once (nginx checks the key in
    its rewrite phase, before reading the body; TorchServe itself would read it all first)."""
    limit = int(TorchServe(environ={}).config["max_request_size"])
    host, port = proxy.inference.removeprefix("http://").split(":")
    head = (
        f"POST /predictions/mnist_cnn HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        f"Content-Type: image/png\r\nContent-Length: {limit}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        began = time.monotonic()
        sock.sendall(head)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 401 "), reply[:200]
    assert time.monotonic() - began < 2
