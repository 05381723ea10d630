"""`make run` end to end: scripts/run.py starts TorchServe and the UI; Ctrl-C stops them both.

It runs in a copy of the repository (its own run/ and model_store/, weights from the session
fixture) on free loopback ports, so it never meets a `make run` of the developer.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from stack.ports import free_ports, loopback_environ
from stack.torchserve import TorchServe
from tests.conftest import clean_environ
from tests.helpers import REPO_ROOT, wait_for_health
from tests.webui.conftest import drawn_zero

pytestmark = pytest.mark.integration

RESET_SIGINT_AND_RUN = (
    "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv('.venv/bin/python', ['.venv/bin/python', '-m', 'scripts.run'])"
)
COPIED = (
    "scripts",
    "config",
    "webui",
    "handlers",
    "recognition",
    "stack",
    "tsclient",
    "pyproject.toml",
)


def repository_copy(target: Path, weights: Path) -> Path:
    """The parts of the repository `make run` needs, the given weights, and a link to the venv."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    shutil.copytree(weights, target / "weights")
    (target / ".venv").symlink_to(REPO_ROOT / ".venv")
    return target


def test_run_script_serves_the_ui_and_stops_everything_on_ctrl_c(torchserve, tmp_path):
    weights = torchserve.server.model_store.parent / "weights"  # what the fixture served
    root = repository_copy(tmp_path / "repo", weights)
    *listeners, ui = free_ports(6)
    env = {
        **clean_environ(),
        **loopback_environ(listeners),
        "GUNICORN_BIND": f"127.0.0.1:{ui}",
        "GUNICORN_WORKERS": "1",
    }
    env = {k: v for k, v in env.items() if not k.startswith("WEBUI_")}
    log = (tmp_path / "run.log").open("w")
    # A new process group, as a terminal gives `make run` (SIGINT not ignored, even when pytest
    # itself runs in the background), and later SIGINT to the group as Ctrl-C sends it.
    process = subprocess.Popen(
        [sys.executable, "-c", RESET_SIGINT_AND_RUN],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = TorchServe(root / "run" / "torchserve", root / "model_store", environ=env)
    url = f"http://127.0.0.1:{ui}"
    try:
        wait_for_health(url, process, 150, 0.5, lambda: (tmp_path / "run.log").read_text()[-3000:])
        health = requests.get(f"{url}/api/health", timeout=5).json()
        assert health["status"] == "ok", health
        response = requests.post(
            f"{url}/api/predict", files={"file": ("d.png", drawn_zero())}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert server.is_running()  # the UI talks to the TorchServe make run started

        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        assert not server.is_running()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/api/health", timeout=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server.stop()
        log.close()
