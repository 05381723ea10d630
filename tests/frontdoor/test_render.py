"""config/nginx.conf.template as stack/nginx.py renders it: derived values, valid for nginx."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from recognition.limits import COSTLY_IN_FLIGHT, max_request_bytes
from stack.headers import security_headers
from stack.launcher import door_settings
from stack.nginx import (
    ERROR_STATUSES,
    DoorSettings,
    Nginx,
    NginxError,
    body_dir,
    find_nginx,
    render,
)
from webui import config as ui_config
from webui.security import HEADERS

pytestmark = pytest.mark.unit


def rendered(tmp_path: Path, settings: DoorSettings | None = None) -> str:
    return render("127.0.0.1:5000", "127.0.0.1:5001", tmp_path, settings or DoorSettings())


def test_the_body_limit_is_max_request_bytes(tmp_path: Path) -> None:
    text = rendered(tmp_path)
    assert f"client_max_body_size {max_request_bytes()};" in text
    assert "{{" not in text


def test_error_pages_are_json_with_the_apps_security_headers(tmp_path: Path) -> None:
    text = rendered(tmp_path)
    assert security_headers() == HEADERS  # one definition for the app and nginx
    for status in (400, 408, 413, 429, 502, 503, 504):
        assert status in ERROR_STATUSES
        block = text.split(f"location = /.front-door-error/{status} {{", 1)[1].split("}", 1)[0]
        for name, value in security_headers().items():
            assert f'add_header {name} "{value}" always;' in block
        assert f'return {status} \'{{"error": ' in block
    assert 'add_header Retry-After "1" always;' in text


def test_nginx_waits_longer_than_the_ui_waits_for_torchserve() -> None:
    ui_wait = ui_config.DEFAULTS["CONNECT_TIMEOUT"] + ui_config.DEFAULTS["READ_TIMEOUT"]
    assert DoorSettings().ui_wait == ui_wait
    assert DoorSettings().proxy_timeout > ui_wait
    told = door_settings({"WEBUI_READ_TIMEOUT": "20"})
    assert told.proxy_timeout > 20.5


def test_the_prediction_limit_follows_gunicorns_threads() -> None:
    assert door_settings({}).max_predictions == 2 * ui_config.GUNICORN_THREADS
    three = door_settings({"GUNICORN_WORKERS": "3", "GUNICORN_THREADS": "4"})
    assert three.max_predictions == 12


def test_large_uploads_follow_the_uis_costly_lanes() -> None:
    """nginx passes as many photos as the UI has lanes for (webui/shedding.py), all workers."""
    assert door_settings({}).max_large_uploads == ui_config.DEFAULTS["COSTLY_IN_FLIGHT"]
    assert door_settings({"GUNICORN_WORKERS": "3"}).max_large_uploads == COSTLY_IN_FLIGHT
    assert door_settings({"WEBUI_COSTLY_IN_FLIGHT": "2"}).max_large_uploads == 2


def test_only_the_headers_the_app_reads_are_forwarded(tmp_path: Path) -> None:
    text = rendered(tmp_path)
    assert "proxy_pass_request_headers off;" in text
    forwarded = set(re.findall(r"proxy_set_header ([\w-]+) ", text))
    assert forwarded == {
        "Connection",
        "Host",
        "Content-Type",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Request-ID",
    }


def test_client_deadlines_are_short_and_bodies_buffered(tmp_path: Path) -> None:
    text = rendered(tmp_path)
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        seconds = int(re.search(rf"{name} (\d+)s;", text).group(1))
        assert seconds <= 10, name
    assert "proxy_request_buffering on;" in text
    assert "proxy_ignore_client_abort off;" in text
    assert "proxy_intercept_errors on" not in text  # the app's own JSON errors pass unchanged


def test_the_rendered_configuration_is_valid_for_nginx(tmp_path: Path) -> None:
    try:
        nginx = find_nginx()
    except NginxError as exc:
        pytest.skip(str(exc))
    door = Nginx("127.0.0.1:5000", "127.0.0.1:5001", tmp_path)
    try:
        conf = door.write_config()
        checked = subprocess.run(
            [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(body_dir(tmp_path), ignore_errors=True)
    assert checked.returncode == 0, checked.stderr
