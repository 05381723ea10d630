"""Security defaults as configured: loopback everywhere, token auth on, no management writes.

What the committed configuration says; tests/reliability/test_security_live.py checks what the
running servers actually do.
"""

from __future__ import annotations

import ast
import runpy
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stack.paths import CONFIG_FILE
from stack.properties import read_properties
from webui import create_app
from webui.config import DEFAULTS

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
PROPERTIES = read_properties(CONFIG_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("key", ["inference_address", "management_address", "metrics_address"])
def test_torchserve_http_listeners_are_on_loopback(key: str) -> None:
    assert urlsplit(PROPERTIES[key]).hostname == LOOPBACK


@pytest.mark.parametrize("key", ["grpc_inference_address", "grpc_management_address"])
def test_torchserve_grpc_listeners_are_on_loopback(key: str) -> None:
    # Absent, TorchServe 0.12 binds gRPC to every interface: the key must be there.
    assert PROPERTIES.get(key) == LOOPBACK


def test_token_authorization_is_on_and_model_registration_off() -> None:
    assert PROPERTIES["disable_token_authorization"] == "false"
    assert PROPERTIES["enable_model_api"] == "false"
    assert PROPERTIES.get("install_py_dep_per_model", "false") == "false"
    assert float(PROPERTIES["token_expiration_min"]) > 0


def test_gunicorn_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    settings = runpy.run_path(str(REPO_ROOT / "config" / "gunicorn.conf.py"))
    host = settings["bind"].rsplit(":", 1)[0]
    assert host == LOOPBACK


def test_the_web_ui_calls_torchserve_on_loopback_by_default() -> None:
    for key in ("INFERENCE_URL", "MANAGEMENT_URL"):
        assert urlsplit(DEFAULTS[key]).hostname == LOOPBACK


def test_no_route_of_the_web_ui_writes_anything_but_an_inference() -> None:
    """POST only asks a model about an image (predict, explain): nothing is stored or changed."""
    app = create_app({"TESTING": True})
    try:
        writes = {}
        for rule in app.url_map.iter_rules():
            methods = (rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}
            if methods:
                writes[rule.rule] = methods
            assert not any(word in rule.rule for word in ("model", "token", "worker", "register"))
        assert writes == {"/api/predict": {"POST"}, "/api/explain": {"POST"}}
    finally:
        app.extensions["torchserve"].close()


def _http_calls(tree: ast.AST) -> list[str]:
    """Method names of every `<something>.<method>(...)` call that looks like an HTTP verb."""
    verbs = {"get", "post", "put", "delete", "patch", "request"}
    return [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in verbs
    ]


def test_the_web_ui_never_sends_a_management_write() -> None:
    """Its code holds no PUT/DELETE/PATCH call and names no other method for `request`."""
    for path in sorted((REPO_ROOT / "webui").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not {"put", "delete", "patch"} & set(_http_calls(tree)), path.name
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert not {"PUT", "DELETE", "PATCH"} & literals, path.name
